// biome-ignore-all lint/suspicious/noUndeclaredEnvVars: research scripts read optional paths from the environment
// Dev-split pass-key sweep (query-aware unless AGNOSTIC=1): N cases of length L with filler from eval-data/dev.txt,
// one prefill per case, greedy answer under every variant. node tools/research/dev-passkey-sweep.mjs L N RATIO VARIANTS_JSON
// Its cases splice the needle's tokens into token-level filler and accept any answer that starts with the key: it
// saw 44/64 for the uncapped default where `eval`'s cases (text-level insertion, the exact answer) see 9/32 against
// SnapKV's 24/32. Dev retrieval is measured with `eval --text eval-data/dev.txt` since (docs/results.md).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../packages/eval/package.json', import.meta.url));
const { loadModel, Session } = await import(require.resolve('@semanticache/runtime'));
const [L, N] = process.argv.slice(2, 4).map(Number);
const ratio = Number(process.argv[4]);
const variants = JSON.parse(process.argv[5]);
const agnostic = process.env.AGNOSTIC === '1';
const text = readFileSync(new URL('../../eval-data/dev.txt', import.meta.url), 'utf8');
const model = await loadModel(
  process.env.RETRIEVAL_MODEL ?? new URL('../../packages/model-demo-retrieval/weights', import.meta.url).pathname,
  { intraOpThreads: 1 },
);
const tok = model.tokenizer;
let seed = 12345;
const rand = () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
};
const score = {};
for (let c = 0; c < N; c++) {
  const key = String(10000 + Math.floor(rand() * 90000));
  const at = Math.floor(rand() * (text.length - L * 8));
  const filler = tok.encode(text.slice(at, at + L * 6), { addSpecialTokens: false }).slice(0, L - 60);
  const depth = rand();
  const cut = Math.floor(depth * filler.length);
  const header = tok.encode(
    'There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it.\n',
    { addSpecialTokens: true },
  );
  const needle = tok.encode(` The pass key is ${key}. Remember it. ${key} is the pass key. `, {
    addSpecialTokens: false,
  });
  const question = tok.encode('\nWhat is the pass key? The pass key is', { addSpecialTokens: false });
  const ctx = [...header, ...filler.slice(0, cut), ...needle, ...filler.slice(cut)];
  const prefix = agnostic ? ctx : [...ctx, ...question];
  const base = model.createSession({ collectMass: 'all', compressTrigger: 'manual' });
  for (let i = 0; i < prefix.length; i += 512) await base.prefill(prefix.slice(i, i + 512));
  const snap = base.snapshot();
  base.dispose();
  for (const [label, policy] of Object.entries(variants)) {
    const s = Session.restore(model, snap, { policy: { ...policy, budget: { ratio } }, compressTrigger: 'manual' });
    s.compress();
    let out = '';
    for await (const t of s.generate(agnostic ? question : [], { maxTokens: 4, temperature: 0, ignoreEos: true }))
      out += t.text;
    s.dispose();
    score[label] = (score[label] ?? 0) + (out.trim().startsWith(key) ? 1 : 0);
  }
}
for (const [k, v] of Object.entries(score)) console.log(k.padEnd(20), `${v}/${N}`);
await model.dispose();
