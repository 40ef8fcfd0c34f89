// Load time and memory of a 0.5B checkpoint (Qwen2.5-0.5B's shape, random bf16 weights) in each weight format. The
// checkpoint is written once into the OS temp folder and reused; every load runs in a fresh child process, so its
// peak RSS belongs to that load alone.
// The loads run the package's build (dist/, rebuilt by the script first): what an installed package runs, worker
// threads included.
//   pnpm bench:load            (float32, int8, int4; default load workers and 0; 3 loads each; writes docs/benchmarks/load.md)
//   pnpm bench:load -- --formats int4 --workers 0 --runs 1 --no-write
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as ort from 'onnxruntime-node';
import { type ModelConfig, parseHfConfig } from '../src/config.js';
import type { WeightFormat } from '../src/index.js';
import { QUANT_BLOCK } from '../src/quantize.js';
import { hfTensorPlan } from '../src/weights.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FORMATS: WeightFormat[] = ['float32', 'int8', 'int4'];
const MiB = 1024 * 1024;

// Qwen2.5-0.5B's config.json, as published (weights random here).
const QWEN2_05B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** xoshiro128** uniforms in (0, 1) and Box–Muller normals: the same checkpoint on every machine. */
function normalSource(seed: number): () => number {
  let s0 = seed >>> 0 || 1;
  let s1 = 0x9e3779b9;
  let s2 = 0x85ebca6b;
  let s3 = 0xc2b2ae35;
  const uniform = () => {
    const x = Math.imul(s1, 5);
    const r = Math.imul((x << 7) | (x >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    return ((r >>> 0) + 0.5) / 4294967296;
  };
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
}

/** fp32 → bf16 bits, round to nearest even. */
function bf16Bits(x: number, f: Float32Array, u: Uint32Array): number {
  f[0] = x;
  const b = u[0];
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

/** Writes config.json and model.safetensors (bf16; norms 1 + N(0, 0.02), everything else N(0, 0.02)) unless present. */
function ensureCheckpoint(dir: string): ModelConfig {
  const configJson = `${JSON.stringify(QWEN2_05B, null, 2)}\n`;
  const configPath = path.join(dir, 'config.json');
  const config = parseHfConfig(QWEN2_05B, configPath);
  const { required } = hfTensorPlan(config);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of required) {
    const bytes = 2 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - (headerText.length % 8)) % 8);
  const fileBytes = 8 + headerText.length + offset;
  const weightsPath = path.join(dir, 'model.safetensors');
  if (
    existsSync(weightsPath) &&
    statSync(weightsPath).size === fileBytes &&
    existsSync(configPath) &&
    readFileSync(configPath, 'utf8') === configJson
  ) {
    return config;
  }
  mkdirSync(dir, { recursive: true });
  console.log(`writing ${(fileBytes / MiB).toFixed(0)} MiB of random bf16 weights to ${dir} …`);
  const partial = `${weightsPath}.partial`;
  const fd = openSync(partial, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerText.length));
    writeSync(fd, len);
    writeSync(fd, headerText);
    const normal = normalSource(20261204);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const chunk = new Uint16Array(1 << 20);
    for (const [name, shape] of required) {
      const n = shape.reduce((a, b) => a * b, 1);
      const mean = name.endsWith('norm.weight') ? 1 : 0;
      for (let done = 0; done < n; done += chunk.length) {
        const m = Math.min(chunk.length, n - done);
        for (let i = 0; i < m; i++) chunk[i] = bf16Bits(mean + 0.02 * normal(), f, u);
        writeSync(fd, chunk.subarray(0, m));
      }
    }
  } finally {
    closeSync(fd);
  }
  renameSync(partial, weightsPath);
  writeFileSync(configPath, configJson);
  return config;
}

/**
 * Bytes of the weights the model holds in `format`: the token embedding as the checkpoint stores it (bf16 here; the
 * runtime looks its rows up itself), and the ORT sessions' initializers: projections and the LM head quantized where
 * their input size is a multiple of 32, else fp32; norms and biases fp32. A tied LM head is a matrix of its own.
 */
function heldWeightBytes(c: ModelConfig, format: WeightFormat): number {
  const bits = format === 'int8' ? 8 : format === 'int4' ? 4 : 32;
  const matrix = (n: number, k: number) =>
    bits === 32 || k % QUANT_BLOCK !== 0 ? 4 * n * k : (n * k * bits) / 8 + 4 * n * (k / QUANT_BLOCK);
  const { hiddenSize: h, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = c;
  const qkvRows = (H + 2 * Hkv) * d;
  let layer = 4 * 2 * h; // norms
  layer += matrix(qkvRows, h) + matrix(h, H * d) + matrix(2 * I, h) + matrix(h, I);
  if (c.qkvBias) layer += 4 * qkvRows;
  if (c.oBias) layer += 4 * h;
  if (c.mlpBias) layer += 4 * (2 * I + h);
  return 2 * V * h + c.numLayers * layer + 4 * h + matrix(V, h);
}

interface LoadResult {
  format: WeightFormat;
  /** the loadWorkers option: a number, or 'default' */
  workers: string;
  baselineRss: number;
  loadS: number;
  /** user + system CPU seconds of the whole process during the load */
  loadCpuS: number;
  peakRss: number;
  rssAfterLoad: number;
  prefillTokens: number;
  decodeMs: number;
}

const RESULT = 'LOAD_RESULT ';

const HOW = `## How the load works, and what was measured on the way

An HF checkpoint is opened with its tensor names and shapes checked against config.json (no data read); then the
token embedding is read once as stored (bf16 here: 260 MiB, against 519 MiB widened) and kept by the runtime, which
looks up a block's rows itself and hands them to the first graph; then the graphs (first, head, layers 1…L−1, last)
are built and handed to ORT one at a time. Each graph reads the tensors it
holds as it is built, widened to fp32 straight into their final arrays (q/k/v and gate/up into one stacked array each,
no concatenation copy; bf16 widening and the non-finite check in one pass through an 8 MiB read buffer); int8 / int4
quantize one matrix at a time from those arrays. After each graph the arrays go back to a pool the next layer reuses,
and the graph's bytes are dropped once ORT has its session, so the process never holds the model's fp32 weights or
all graph bytes at once.

Load workers (\`loadWorkers\`; by default one per core up to 4 for checkpoints of 64 MiB or more). ORT creates a
session synchronously on the thread that asks, so building the graphs beside it is what can overlap: worker threads
read, widen and quantize their share of the graphs (graph i of the order by worker i mod workers) and transfer the
bytes; the loading thread creates each graph's session as it arrives, in whatever order they finish. Each worker is
at most one graph ahead (one finished, one being built), which bounds the memory in flight. The table's rows with 0
workers build every graph in the loading thread, as before. With 2 cores the workers cut the load by 1.5–2.7 s; the
fp32 load is then bound by ORT's session creation on the loading thread (about 110 ms per layer graph of 56 MiB).
Putting the head last in the order (so that a worker would build it while the layers' sessions are created) was
measured and rejected: fp32 8.0 s and 3682 MiB peak against 5.3 s and 2812 MiB with it second, since its creation's
transient copies then came on top of every layer's weights.

The fp32 LM head's session is created without ORT's prepacking (\`session.disable_prepacking\`): it multiplies one row
per step (the last token's logits), which runs as fast unpacked, and its session is created 2× faster. \`pnpm exec tsx
bench/prepack.ts\` (one run, same machine): the 151936 × 896 head took 1281–1285 ms to create packed against 586–616 ms
unpacked, one row 36.6–37.2 ms either way (14.6–14.9 GB/s), 64 rows 140–151 ms packed against 196–198 ms unpacked
(so \`score()\`, which asks for every row's logits, pays that on the head). The layers keep their packed matrices: a
64-row block ran 1.2–1.3× slower unpacked (gate/up 9728 × 896: 10.2–11.1 against 12.2–12.9 ms), and prefill is
where that counts.

With the embedding as an fp32 initializer of the first graph (ORT gathered its rows), the same streamed load measured
(3 loads per format, load average 2.5–2.8): float32 14.1 s, peak RSS 3487 MiB, after load 2773 MiB; int8 13.2 s,
2210 MiB, 1430 MiB; int4 11.8 s, 2213 MiB, 1117 MiB.

Before streaming (the whole model widened to fp32, q/k/v and gate/up concatenated, every graph's bytes built, then every
session created), one load per format on the same machine and checkpoint, 2026-12-04: float32 29.0 s, peak RSS
7422 MiB, after load 3174 MiB (1.27× the weights held); int8 21.1 s, 4438 MiB, 2301 MiB (2.07×); int4 19.9 s,
3954 MiB, 1862 MiB (2.14×).

ORT and memory (scratch scripts, same machine). One fp32 \`Gemm\` session on its own holds its initializer's size
once after load, with or without \`session.disable_prepacking\` (the prepacked copy replaces the
initializer). Disabling prepacking for every session made whole fp32 loads faster (11.3–11.8 s and 10.7–11.7 s against
17.4–20.9 s and 12.5–15.5 s, before the load workers), but decode steps (8 after a 256-token prefill) were 4–8 % and
24–41 % slower in those two noisy runs, so only the head goes without it.
\`MatMulNBits\` needs its prepacking: without it a 32768 × 1792 product of one row ran 70–80× slower. A freshly
created int4 \`MatMulNBits\` session held 2.9× its initializer bytes, but 1.3× when the process ran with
\`MALLOC_MMAP_THRESHOLD_=131072\`: the excess is freed memory glibc keeps, not a second copy of the weights. The whole load
run that way (\`MALLOC_MMAP_THRESHOLD_=131072 pnpm bench:load -- --runs 1 --no-write\`, one load per format, a quieter
moment of the same day): float32 9.37 s, after load 2251 MiB (1.00× the weights held); int8 8.34 s, 1027 MiB
(1.15×); int4 7.95 s, 786 MiB (1.21×) — so what the table shows above 1× is mostly freed memory glibc keeps; a
deployment short of memory can set that variable.
\`quantizeBlocks\` is now about 2.5× faster (an integer compare of magnitudes for the block's extreme, truncation of
x / scale + zero + 0.5 instead of \`Math.round\`; the packed bytes equal the previous ones except at exact rounding
ties). The blocks are now quantized in WebAssembly SIMD (\`assembly/quantize.ts\`, the same bytes as the TypeScript
loops, which remain where SIMD is missing): a 9728 × 896 matrix in 22–28 ms against 59–73 ms (2.5–3.2 against
6.8–8.3 ns per value, a scratch micro-benchmark on a busy moment of the host). With the load workers, that took the
int8 / int4 loads from 4.55 / 4.13 s (load CPU 7.90 / 7.30 s) to the table's figures; in the TypeScript loops
quantizing was about 3 s of CPU of an int4 load.`;

/** One load in this (child) process: baseline RSS, load time, peak and steady RSS, then a prefill and one decode step. */
async function child(dir: string, format: WeightFormat, workers: string): Promise<void> {
  const built = path.resolve(here, '..', 'dist', 'index.js');
  if (!existsSync(built)) throw new Error(`${built} not found: build the package first (pnpm run build)`);
  const { loadModel } = (await import(pathToFileURL(built).href)) as typeof import('../src/index.js');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // the baseline has onnxruntime (one trivial session, created and released) and the attention addon loaded
  const { GraphBuilder, valueInfo } = await import('../src/onnx-builder.js');
  const g = new GraphBuilder();
  g.op('Identity', ['x'], {}, 'y');
  const trivial = await ort.InferenceSession.create(g.encode([valueInfo('x', 1, ['n'])], [valueInfo('y', 1, ['n'])]));
  await trivial.release();
  await import('@semanticache/proportional-attention');
  await settle();
  const baselineRss = process.memoryUsage().rss;

  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const loadWorkers = workers === 'default' ? undefined : Number(workers);
  const model = await loadModel(dir, { weightFormat: format, loadWorkers });
  const loadS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const loadCpuS = (cpu.user + cpu.system) / 1e6;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  await settle();
  const rssAfterLoad = process.memoryUsage().rss;

  const session = model.createSession();
  const prompt = Int32Array.from({ length: 16 }, (_, i) => 1000 + 37 * i);
  await session.prefill(prompt);
  const t1 = performance.now();
  const logits = await session.decodeStep(4242);
  const decodeMs = performance.now() - t1;
  if (logits.length !== model.config.vocabSize || !logits.every(Number.isFinite)) {
    throw new Error(`decodeStep returned ${logits.length} logits, not ${model.config.vocabSize} finite ones`);
  }
  session.dispose();
  await model.dispose();
  const result: LoadResult = {
    format,
    workers,
    baselineRss,
    loadS,
    loadCpuS,
    peakRss,
    rssAfterLoad,
    prefillTokens: prompt.length,
    decodeMs,
  };
  console.log(RESULT + JSON.stringify(result));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const dir = path.join(os.tmpdir(), 'semanticache-load-bench-qwen2-0.5b');
  if (args[0] === '--child') {
    await child(dir, args[1] as WeightFormat, args[2]);
    return;
  }
  const formats = arg('formats', FORMATS.join(',')).split(',') as WeightFormat[];
  const workerSettings = arg('workers', 'default,0').split(',');
  const runs = Number(arg('runs', '3'));
  const defaultWorkers = Math.min(4, os.availableParallelism());
  const config = ensureCheckpoint(dir);
  const checkpointBytes = statSync(path.join(dir, 'model.safetensors')).size;

  const rows: string[] = [];
  const results: Record<string, LoadResult[]> = {};
  const label = (format: WeightFormat, workers: string) =>
    `${format} ${workers === 'default' ? `default (${defaultWorkers})` : workers}`;
  for (let run = 0; run < runs; run++) {
    for (const format of formats) {
      for (const workers of workerSettings) {
        const out = spawnSync(
          process.execPath,
          [...process.execArgv, fileURLToPath(import.meta.url), '--child', format, workers],
          {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'inherit'],
            maxBuffer: 64 * MiB,
          },
        );
        const line = out.stdout.split('\n').find((l) => l.startsWith(RESULT));
        if (out.status !== 0 || !line) throw new Error(`${format} load failed (exit ${out.status}):\n${out.stdout}`);
        const r = JSON.parse(line.slice(RESULT.length)) as LoadResult;
        const key = label(format, workers);
        console.log(
          `${key} run ${run + 1}: ${r.loadS.toFixed(2)} s (CPU ${r.loadCpuS.toFixed(2)} s), peak ${(r.peakRss / MiB).toFixed(0)} MiB, after load ${(r.rssAfterLoad / MiB).toFixed(0)} MiB, decode ${r.decodeMs.toFixed(0)} ms`,
        );
        results[key] = [...(results[key] ?? []), r];
      }
    }
  }
  for (const format of formats) {
    for (const workers of workerSettings) {
      const rs = results[label(format, workers)];
      const held = heldWeightBytes(config, format);
      const base = median(rs.map((r) => r.baselineRss));
      const loads = rs.map((r) => r.loadS);
      const peak = Math.max(...rs.map((r) => r.peakRss));
      const steady = median(rs.map((r) => r.rssAfterLoad));
      const ratio = median(rs.map((r) => (r.rssAfterLoad - r.baselineRss) / held));
      const peakRatio = median(rs.map((r) => (r.peakRss - r.baselineRss) / held));
      const [f, ...w] = label(format, workers).split(' ');
      rows.push(
        `| ${f} | ${w.join(' ')} | ${median(loads).toFixed(2)} (${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}) | ` +
          `${median(rs.map((r) => r.loadCpuS)).toFixed(2)} | ` +
          `${(held / MiB).toFixed(0)} | ${(base / MiB).toFixed(0)} | ${(peak / MiB).toFixed(0)} | ${peakRatio.toFixed(2)}× | ` +
          `${(steady / MiB).toFixed(0)} | ${ratio.toFixed(2)}× | ${median(rs.map((r) => r.decodeMs)).toFixed(0)} |`,
      );
    }
  }
  const header = [
    '| weights | load workers | load s, median (range) | load CPU s | weights held MiB | baseline RSS MiB | peak RSS MiB | (peak − baseline) / held | RSS after load MiB | (RSS after load − baseline) / held | first decode step ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const table = [...header, ...rows].join('\n');
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `Linux ${os.release()}, Node ${process.version}, onnxruntime-node ${ort.env.versions.common}; load average at the end ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' / ')}`;
  console.log(`\n${table}\n\n${machine}`);
  if (args.includes('--no-write')) return;
  const doc = `# @semanticache/runtime: load time and memory

How long \`loadModel\` takes on a 0.5B checkpoint and how much memory the process holds afterwards, per weight format.
The checkpoint has Qwen2.5-0.5B's published config.json (qwen2, hidden 896, 24 layers, 14 heads, 2 KV heads,
intermediate 4864, vocabulary 151936, tied embeddings, q/k/v biases) and random bf16 weights (seeded N(0, 0.02);
norms 1 + N(0, 0.02)): ${(checkpointBytes / MiB).toFixed(0)} MiB of safetensors, no tokenizer. Command:
\`pnpm bench:load\` in \`packages/runtime\` (writes the checkpoint into the OS temp folder once, then loads it in a
fresh child process per load, ${runs} loads per format, interleaved; this file is its output).

Definitions. *Baseline RSS*: the child's RSS after onnxruntime (one trivial session created and released) and the
attention addon are loaded, before \`loadModel\`. *Load s*: \`await loadModel(dir, { weightFormat, loadWorkers })\`, wall
clock; *load CPU s*: the process's user + system CPU time over the same span (on a shared machine, what the load
itself cost).
*Peak RSS*: \`process.resourceUsage().maxRSS\` right after the load. *RSS after load*: \`process.memoryUsage().rss\`
after the load and three garbage collections 100 ms apart. *Weights held*: the token embedding as stored (bf16, in
the runtime's own memory) plus the initializers the ORT sessions are given in that format: projections and the LM
head in fp32 or as 8- / 4-bit blocks of 32 with one fp32 scale each, norms and biases in fp32; the tied LM head is a
matrix of its own. The memory ratios subtract the baseline. *First decode step*:
one \`decodeStep\` after a ${Object.values(results)[0][0].prefillTokens}-token \`prefill\` on a fresh session (its
logits are checked to be finite).

${table}

Machine: ${machine}. ${new Date().toISOString().slice(0, 10)}.

${HOW}
`;
  const docPath = path.resolve(here, '..', '..', '..', 'docs', 'benchmarks', 'load.md');
  writeFileSync(docPath, doc);
  console.log(`wrote ${docPath}`);
}

await main();
