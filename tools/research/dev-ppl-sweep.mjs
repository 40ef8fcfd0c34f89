// biome-ignore-all lint/suspicious/noUndeclaredEnvVars: research scripts read optional paths from the environment
// Dev-split sweep of policy options (perplexity): prefill C tokens of W windows of eval-data/dev.txt once, compress
// under every variant, score the next T tokens; prints ppl, the paired ΔNLL per token vs full ± its standard error
// and the compression time. node tools/research/dev-ppl-sweep.mjs C T W RATIOS VARIANTS_JSON
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const evalRequire = createRequire(new URL('../../packages/eval/package.json', import.meta.url));
const cliRequire = createRequire(new URL('../../apps/cli/package.json', import.meta.url));
const { loadModel, Session } = await import(evalRequire.resolve('@semanticache/runtime'));
const { demoModelDir } = await import(cliRequire.resolve('@semanticache/model-demo'));
const [C, T, W] = process.argv.slice(2, 5).map(Number);
const ratios = process.argv[5].split(',').map(Number);
const variants = JSON.parse(process.argv[6]);
const text = readFileSync(process.argv[7] ?? new URL('../../eval-data/dev.txt', import.meta.url), 'utf8');
const model = await loadModel(process.env.MODEL ?? demoModelDir, { intraOpThreads: 1 });
const tok = model.tokenizer;
const res = {};
const ms = {};
let prefillMs = 0;
for (let w = 0; w < W; w++) {
  const at = Math.floor(((w + 0.5) / W) * (text.length - (C + T) * 8));
  const ids = tok.encode(text.slice(at, at + (C + T) * 8), { addSpecialTokens: false }).slice(50, 50 + C + T);
  const base = model.createSession({ policy: { name: 'snapkv', budget: { ratio: 0.5 } }, compressTrigger: 'manual' });
  const t0 = performance.now();
  for (let i = 0; i < C; i += 512) await base.prefill(ids.slice(i, Math.min(C, i + 512)));
  prefillMs += performance.now() - t0;
  const snap = base.snapshot();
  base.dispose();
  const target = ids.slice(C, C + T);
  for (const [label, policy] of Object.entries(variants)) {
    for (const ratio of policy.name === 'full' ? [0] : ratios) {
      const s = Session.restore(model, snap, {
        policy: { ...policy, budget: { ratio: Math.max(ratio, 0) } },
        compressTrigger: 'manual',
      });
      const t1 = performance.now();
      if (policy.name !== 'full') s.compress();
      if (!ms[`${label}@${ratio}`]) ms[`${label}@${ratio}`] = [];
      ms[`${label}@${ratio}`].push(performance.now() - t1);
      let nll = 0;
      for (let i = 0; i < T; i += 512) {
        const r = await s.score(target.slice(i, i + 512));
        nll += r.nll * r.logProbs.length;
      }
      s.dispose();
      const key = `${label}@${ratio}`;
      if (!res[key]) res[key] = [];
      res[key].push(nll / T);
    }
  }
}
const full = res['full@0'];
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
for (const [k, v] of Object.entries(res)) {
  const d = v.map((x, i) => x - full[i]);
  const md = mean(d),
    se = Math.sqrt(d.reduce((a, x) => a + (x - md) ** 2, 0) / (d.length - 1) / d.length);
  const t = ms[k] ? mean(ms[k]).toFixed(0) : '-';
  console.log(
    `${k.padEnd(28)} ${String(t).padStart(5)} ms  ppl ${Math.exp(mean(v)).toFixed(3)}  Δnll ${(md * 1000).toFixed(1)}e-3 ± ${(se * 1000).toFixed(1)}e-3`,
  );
}
console.log(`prefill ${(prefillMs / W).toFixed(0)} ms per window`);
await model.dispose();
