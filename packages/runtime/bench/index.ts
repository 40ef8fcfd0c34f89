// Prefill and decode speed, KV bytes and RSS of the demo model: full cache vs SemantiCache at ratios 0.5 and 0.75,
// against this machine's memory-bandwidth roofline measured in the same run. Decode steps of the sessions being
// compared are interleaved round-robin and summarised by their median, so load from other processes on this shared
// 2-core machine hits every policy alike.
//   pnpm bench                                   (contexts 1024, 4096, 8128; 48 decode steps each)
//   pnpm bench -- --contexts 1024 --steps 16     (a quick subset)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { bandwidthProbe, getThreads, setThreads } from '@semanticache/proportional-attention';
import {
  type CachePolicy,
  type KVDtype,
  loadModel,
  type Model,
  type Session,
  type WeightFormat,
} from '../src/index.js';
import { argmax } from '../src/sampler.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const here = path.dirname(fileURLToPath(import.meta.url));
const demoDir = path.resolve(here, '..', '..', 'model-demo', 'weights');
const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const DECODE_STEPS = Number(arg('steps', '48'));
const contexts = arg('contexts', '1024,4096,8128').split(',').map(Number);

interface Variant {
  label: string;
  policy: CachePolicy;
  kvDtype: KVDtype;
  weights: WeightFormat;
}
const SC75: CachePolicy = { name: 'semanticache', budget: { ratio: 0.75 } };
// the first row is the baseline of every speedup: the full cache at the default formats (fp32 weights, fp16 KV)
const variants: Variant[] = [
  { label: 'full', policy: { name: 'full' }, kvDtype: 'float16', weights: 'float32' },
  {
    label: 'semanticache 0.5',
    policy: { name: 'semanticache', budget: { ratio: 0.5 } },
    kvDtype: 'float16',
    weights: 'float32',
  },
  { label: 'semanticache 0.75', policy: SC75, kvDtype: 'float16', weights: 'float32' },
  { label: 'full, fp32 cache', policy: { name: 'full' }, kvDtype: 'float32', weights: 'float32' },
  { label: 'semanticache 0.75, fp32 cache', policy: SC75, kvDtype: 'float32', weights: 'float32' },
  { label: 'full, int8 weights', policy: { name: 'full' }, kvDtype: 'float16', weights: 'int8' },
  { label: 'semanticache 0.75, int8 weights', policy: SC75, kvDtype: 'float16', weights: 'int8' },
  { label: 'full, int4 weights', policy: { name: 'full' }, kvDtype: 'float16', weights: 'int4' },
  { label: 'semanticache 0.75, int4 weights', policy: SC75, kvDtype: 'float16', weights: 'int4' },
];
const WEIGHT_FORMATS: WeightFormat[] = ['float32', 'int8', 'int4'];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sum = (xs: Int32Array) => xs.reduce((a, b) => a + b, 0);
const mib = (bytes: number) => bytes / 2 ** 20;

/**
 * Bytes of weights one decode step reads: every layer matrix and norm, the final norm and the LM head. fp32, or
 * int8 / int4 matrices (one or half a byte per weight plus an fp32 scale per 32) with fp32 norms.
 */
function weightBytesPerToken(model: Model, weights: WeightFormat): number {
  const c = model.config;
  const { hiddenSize: h, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I } = c;
  const matrices = c.numLayers * (h * (H + 2 * Hkv) * d + H * d * h + 3 * h * I) + c.vocabSize * h;
  const norms = c.numLayers * 2 * h + h;
  const perWeight = weights === 'int8' ? 1 + 4 / 32 : weights === 'int4' ? 0.5 + 4 / 32 : 4;
  return perWeight * matrices + 4 * norms;
}

/** Wraps the model's attention kernel to add up the time spent in it. */
function timeKernel(model: Model): { take(): number } {
  let ns = 0n;
  const kernel = model.kernel;
  const inner = kernel.prefill;
  kernel.prefill = (a) => {
    const t = process.hrtime.bigint();
    const out = inner(a);
    ns += process.hrtime.bigint() - t;
    return out;
  };
  return {
    take() {
      const ms = Number(ns) / 1e6;
      ns = 0n;
      return ms;
    },
  };
}

interface Live {
  v: Variant;
  session: Session;
  logits: Float32Array;
  prefillMs: number;
  compressMs: number;
  rssMiB: number;
  stepMs: number[];
  kernelMs: number[];
}

async function decodeRoundRobin(live: Live[], steps: number, kernel: { take(): number }): Promise<void> {
  for (const l of live) l.logits = await l.session.decodeStep(argmax(l.logits)); // warm-up: first m = 1 run
  for (let i = 0; i < steps; i++) {
    for (const l of live) {
      kernel.take();
      const t = performance.now();
      l.logits = await l.session.decodeStep(argmax(l.logits));
      l.stepMs.push(performance.now() - t);
      l.kernelMs.push(kernel.take());
    }
  }
}

/**
 * ORT settings at one context, full cache. Settings without spinning run side by side, their prefills and decode
 * steps interleaved; the spinning setting runs alone afterwards (its idle threads would steal the others' CPU).
 */
async function settingsTable(ids: number[]): Promise<string[]> {
  const configs = [
    { label: 'intra-op 1', intraOpThreads: 1, allowSpinning: false },
    { label: 'intra-op 2, no spinning', intraOpThreads: 2, allowSpinning: false },
    { label: 'intra-op 1, unfused graphs (2L + 1 runs)', intraOpThreads: 1, allowSpinning: false, fuseLayers: false },
    { label: 'intra-op 2, spinning', intraOpThreads: 2, allowSpinning: true },
  ];
  const lines = [
    `\nORT settings (context ${ids.length}, full cache; prefill: median of 3):\n`,
    '| ORT setting | prefill tok/s | decode ms/token (median) |',
    '| --- | --- | --- |',
  ];
  const measure = async (group: typeof configs) => {
    const models = await Promise.all(group.map((c) => loadModel(demoDir, c)));
    const prefillMs: number[][] = group.map(() => []);
    const live: Live[] = [];
    for (let rep = 0; rep < 3; rep++) {
      for (let i = 0; i < group.length; i++) {
        const session = models[i].createSession();
        const t = performance.now();
        const logits = await session.prefill(ids);
        prefillMs[i].push(performance.now() - t);
        if (rep === 2) {
          live.push({
            v: { label: group[i].label, policy: { name: 'full' }, kvDtype: 'float16', weights: 'float32' },
            session,
            logits,
            prefillMs: 0,
            compressMs: 0,
            rssMiB: 0,
            stepMs: [],
            kernelMs: [],
          });
        }
      }
    }
    await decodeRoundRobin(live, DECODE_STEPS, { take: () => 0 });
    for (const [i, l] of live.entries()) {
      const prefill = ((ids.length / median(prefillMs[i])) * 1000).toFixed(0);
      lines.push(`| ${l.v.label} | ${prefill} | ${median(l.stepMs).toFixed(2)} |`);
    }
    for (const m of models) await m.dispose();
  };
  await measure(configs.filter((c) => !c.allowSpinning));
  await measure(configs.filter((c) => c.allowSpinning));

  // attention kernel pool size: one session, alternating 1 and 2 threads step by step
  const model = await loadModel(demoDir);
  const session = model.createSession();
  let logits = await session.prefill(ids);
  const steps: [number[], number[]] = [[], []];
  for (let i = 0; i < 2 * DECODE_STEPS; i++) {
    setThreads(1 + (i % 2));
    const t = performance.now();
    logits = await session.decodeStep(argmax(logits));
    steps[i % 2].push(performance.now() - t);
  }
  setThreads(2);
  await model.dispose();
  lines.push(`| intra-op 1, attention threads 1 (alternating steps) | | ${median(steps[0]).toFixed(2)} |`);
  lines.push(`| intra-op 1, attention threads 2 (alternating steps) | | ${median(steps[1]).toFixed(2)} |`);
  return lines;
}

async function main() {
  // the roofline takes the best read bandwidth seen in the run: probes at the start and before every context
  const probes = [bandwidthProbe({ megabytes: 256, repeats: 5 }).readGBps];
  const bw = { readGBps: probes[0], threads: getThreads() };
  const models = new Map<WeightFormat, Model>();
  for (const format of WEIGHT_FORMATS) models.set(format, await loadModel(demoDir, { weightFormat: format }));
  const model = models.get('float32') as Model;
  const kernel = timeKernel(model);
  for (const other of models.values()) other.kernel.prefill = model.kernel.prefill; // the same timed kernel
  const allIds = model.tokenizer!.encode(readFileSync(path.join(here, 'corpus.txt'), 'utf8'));
  const weightBytes = weightBytesPerToken(model, 'float32');
  const header =
    `demo model: ${model.config.numLayers} layers, hidden ${model.config.hiddenSize}, ${model.config.numKvHeads} KV heads × ${model.config.headDim}; ` +
    `corpus ${allIds.length} tokens; weights read per token ${mib(weightBytes).toFixed(1)} MiB (fp32)\n` +
    `memory bandwidth (read, native probe, ${bw.threads} threads) at start: ${bw.readGBps.toFixed(1)} GB/s; ` +
    `attention threads ${getThreads()}; ORT intra-op threads 1, no spinning; ${DECODE_STEPS} decode steps per variant`;
  console.log(header);
  const out: string[] = [
    '| context | variant | prefill tok/s | compress ms | entries/head | KV MiB (full) | RSS MiB | decode tok/s | ms/token (attention) | roofline ms/token | of roofline | speedup vs full |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const rows: object[] = [];
  if (args.includes('--settings-only')) {
    console.log((await settingsTable(allIds.slice(0, Number(arg('settings-context', '1024'))))).join('\n'));
    return;
  }
  for (const n of contexts) {
    if (n + DECODE_STEPS + 1 > model.config.maxContext || n > allIds.length)
      throw new RangeError(`context ${n} too long`);
    const ids = allIds.slice(0, n);
    probes.push(bandwidthProbe({ megabytes: 256, repeats: 5 }).readGBps);
    bw.readGBps = Math.max(...probes);
    const live: Live[] = [];
    for (const v of variants) {
      const owner = models.get(v.weights) as Model;
      const session = owner.createSession({ policy: v.policy, kvDtype: v.kvDtype, compressTrigger: 'manual' });
      let t = performance.now();
      const logits = await session.prefill(ids);
      const prefillMs = performance.now() - t;
      t = performance.now();
      if (v.policy.name !== 'full') session.compress();
      const compressMs = performance.now() - t;
      gc();
      live.push({
        v,
        session,
        logits,
        prefillMs,
        compressMs,
        rssMiB: mib(process.memoryUsage().rss),
        stepMs: [],
        kernelMs: [],
      });
    }
    await decodeRoundRobin(live, DECODE_STEPS, kernel);
    const fullStep = median(live[0].stepMs);
    for (const l of live) {
      const st = l.session.stats();
      const entries = sum(st.entries);
      const elementBytes = l.v.kvDtype === 'float16' ? 2 : 4;
      // each step reads every key, value and ln(size) once, plus all the weights
      const bytesPerToken =
        weightBytesPerToken(model, l.v.weights) + entries * (2 * model.config.headDim * elementBytes + 4);
      const rooflineMs = (bytesPerToken / (bw.readGBps * 1e9)) * 1000;
      const stepMs = median(l.stepMs);
      const row = {
        context: n,
        variant: l.v.label,
        prefillTokPerS: (n / l.prefillMs) * 1000,
        compressMs: l.compressMs,
        entriesPerHead: entries / st.entries.length,
        kvMiB: mib(st.bytes.current),
        kvFullMiB: mib(st.bytes.full),
        rssMiB: l.rssMiB,
        decodeTokPerS: 1000 / stepMs,
        decodeMsPerToken: stepMs,
        attentionMsPerToken: median(l.kernelMs),
        rooflineMsPerToken: rooflineMs,
        speedupVsFull: fullStep / stepMs,
      };
      rows.push(row);
      out.push(
        `| ${n} | ${l.v.label} | ${row.prefillTokPerS.toFixed(0)} | ${row.compressMs.toFixed(0)} | ${row.entriesPerHead.toFixed(0)} | ` +
          `${row.kvMiB.toFixed(1)} (${row.kvFullMiB.toFixed(1)}) | ${row.rssMiB.toFixed(0)} | ${row.decodeTokPerS.toFixed(1)} | ` +
          `${stepMs.toFixed(2)} (${row.attentionMsPerToken.toFixed(2)}) | ${rooflineMs.toFixed(2)} | ` +
          `${((100 * rooflineMs) / stepMs).toFixed(0)} % | ${row.speedupVsFull.toFixed(2)}× |`,
      );
      l.session.dispose();
    }
    console.log(`roofline bandwidth (best of ${probes.length} probes so far): ${bw.readGBps.toFixed(1)} GB/s`);
    console.log(out.join('\n'));
    out.length = 2;
    gc();
  }
  await Promise.all([...models.values()].map((m) => m.dispose()));
  const threads = await settingsTable(allIds.slice(0, 1024));
  console.log(threads.join('\n'));
  writeFileSync(
    path.join(here, 'results.json'),
    `${JSON.stringify({ date: new Date().toISOString(), bandwidthProbesGBps: probes, decodeSteps: DECODE_STEPS, rows, threads }, null, 2)}\n`,
  );
}

await main();
