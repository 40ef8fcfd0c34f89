/**
 * Clustering + merging a full 8192-token cache of the demo model's shape (8 layers × 6 KV heads × 64 dims), on one
 * core. Keys are synthetic (see synthetic.ts), so the benchmark needs no model.
 * Run: pnpm --filter @semanticache/gsc-cluster bench
 */
import { loadavg } from 'node:os';
import { mergeClusters } from '../../merge/src/index.js';
import { type CompareTo, DEFAULT_THRESHOLD, type GscOptions, gscCluster } from '../src/index.js';
import { randomChunks, randomHead, type SyntheticHead, structuredHead } from './synthetic.js';

const N = 8192;
const D = 64;
const HEADS = 8 * 6;
const SINKS = 4;
const RECENT = 64;
const QUERIES = 16;
const REPEATS = 3;

const protectedMask = new Uint8Array(N);
protectedMask.fill(1, 0, SINKS);
protectedMask.fill(1, N - RECENT, N);

function makeCache(kind: 'random' | 'structured'): { heads: SyntheticHead[]; offsets: Uint32Array[] } {
  const heads: SyntheticHead[] = [];
  const offsets: Uint32Array[] = [];
  for (let h = 0; h < HEADS; h++) {
    heads.push(
      kind === 'random'
        ? randomHead(N, D, 1000 + h, QUERIES)
        : structuredHead({ n: N, d: D, centres: 300, noise: 0.35, seed: 1000 + h, numQueries: QUERIES }),
    );
    // one chunking per layer (chunks come from token ids, shared by the layer's heads)
    offsets.push(h % 6 === 0 ? randomChunks(N, 20, 40, 77 + h) : offsets[h - 1]);
  }
  return { heads, offsets };
}

/** Mean relative L2 error of attention over cores (logit + ln size) against attention over every token. */
function attentionError(head: SyntheticHead, cores: { keys: Float32Array; values: Float32Array; sizes: Float32Array }) {
  const scale = 1 / Math.sqrt(D);
  const attend = (
    keys: Float32Array,
    values: Float32Array,
    sizes: Float32Array | null,
    q: number,
    out: Float64Array,
  ) => {
    const m = keys.length / D;
    const logits = new Float64Array(m);
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < m; j++) {
      let dot = 0;
      for (let k = 0; k < D; k++) dot += head.queries[q * D + k] * keys[j * D + k];
      logits[j] = dot * scale + (sizes === null ? 0 : Math.log(sizes[j]));
      max = Math.max(max, logits[j]);
    }
    out.fill(0);
    let total = 0;
    for (let j = 0; j < m; j++) {
      const w = Math.exp(logits[j] - max);
      total += w;
      for (let k = 0; k < D; k++) out[k] += w * values[j * D + k];
    }
    for (let k = 0; k < D; k++) out[k] /= total;
  };
  const full = new Float64Array(D);
  const merged = new Float64Array(D);
  let sum = 0;
  for (let q = 0; q < QUERIES; q++) {
    attend(head.keys, head.values, null, q, full);
    attend(cores.keys, cores.values, cores.sizes, q, merged);
    let diff = 0;
    let norm = 0;
    for (let k = 0; k < D; k++) {
      diff += (full[k] - merged[k]) ** 2;
      norm += full[k] ** 2;
    }
    sum += Math.sqrt(diff / norm);
  }
  return sum / QUERIES;
}

interface RunResult {
  clusterMs: number;
  mergeMs: number;
  removed: number;
  error: number;
  steps: number;
}

/** CPU time of this process in ms: the machine is shared, so wall time would count other processes' work. */
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

function runAll(
  cache: ReturnType<typeof makeCache>,
  options: (h: number) => GscOptions,
  errorHeads: number,
): RunResult {
  const t0 = cpuMs();
  const clusters = cache.heads.map(({ keys }, h) => gscCluster(keys, N, D, cache.offsets[h], options(h)));
  const t1 = cpuMs();
  const cores = cache.heads.map(({ keys, values }, h) => mergeClusters({ keys, values, n: N, d: D, ...clusters[h] }));
  const t2 = cpuMs();
  let kept = 0;
  let steps = 0;
  for (const c of clusters) {
    kept += c.numClusters;
    steps += c.steps;
  }
  let error = 0;
  for (let h = 0; h < errorHeads; h++) error += attentionError(cache.heads[h], cores[h]);
  return {
    clusterMs: t1 - t0,
    mergeMs: t2 - t1,
    removed: 1 - kept / (N * HEADS),
    error: errorHeads > 0 ? error / errorHeads : 0,
    steps: steps / HEADS,
  };
}

/** Median of REPEATS timed runs (after one warm-up run, which also measures the attention error). */
function measure(cache: ReturnType<typeof makeCache>, options: (h: number) => GscOptions, errorHeads = 6) {
  const first = runAll(cache, options, errorHeads);
  const cluster: number[] = [];
  const merge: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const run = runAll(cache, options, 0);
    cluster.push(run.clusterMs);
    merge.push(run.mergeMs);
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1];
  return { ...first, clusterMs: median(cluster), mergeMs: median(merge) };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (x: number) => x.toFixed(1);

function printTable(title: string, header: string[], rows: string[][]): void {
  console.log(`\n${title}\n`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`| ${header.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

/** Yardstick measured in the same run: a plain JS loop copying every head's keys and values once. */
function copyYardstickMs(cache: ReturnType<typeof makeCache>): number {
  const times: number[] = [];
  for (let r = 0; r <= REPEATS; r++) {
    const t0 = cpuMs();
    for (const { keys, values } of cache.heads) {
      const k = new Float32Array(keys.length);
      const v = new Float32Array(values.length);
      for (let i = 0; i < keys.length; i++) {
        k[i] = keys[i];
        v[i] = values[i];
      }
    }
    if (r > 0) times.push(cpuMs() - t0);
  }
  return times.sort((x, y) => x - y)[times.length >> 1];
}

console.log(
  `load average at start: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')} (${N} tokens, ${HEADS} heads)`,
);
const structured = makeCache('structured');
const random = makeCache('random');

// 1. What τ merges how much, and what it costs in attention accuracy, seed vs centroid comparison.
const sweepRows: string[][] = [];
for (const tau of [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]) {
  const row = [tau.toFixed(2)];
  for (const compareTo of ['seed', 'centroid'] as CompareTo[]) {
    const r = measure(structured, () => ({ threshold: tau, compareTo, protectedMask }));
    row.push(pct(r.removed), r.error.toFixed(4), ms(r.clusterMs));
  }
  row.push(pct(measure(random, () => ({ threshold: tau, protectedMask }), 0).removed));
  sweepRows.push(row);
}
printTable(
  `τ sweep, ${HEADS} heads × ${N} tokens × ${D} dims, structured keys (chunks 20–40, ${SINKS} sinks + ${RECENT} recent protected)`,
  [
    'τ',
    'seed: removed',
    'seed: attn rel. err',
    'seed: gsc ms',
    'centroid: removed',
    'centroid: attn rel. err',
    'centroid: gsc ms',
    'random keys: removed',
  ],
  sweepRows,
);

// 2. The full cache at the default τ and at target ratios, one core.
const pipelineRows: string[][] = [];
const configs: [string, (h: number) => GscOptions][] = [
  [`τ = ${DEFAULT_THRESHOLD}`, () => ({ threshold: DEFAULT_THRESHOLD, protectedMask })],
  ['target 50% removed', () => ({ targetClusters: N / 2, protectedMask })],
  ['target 75% removed', () => ({ targetClusters: N / 4, protectedMask })],
  ['target 50% removed, centroid', () => ({ targetClusters: N / 2, compareTo: 'centroid', protectedMask })],
  ['target 75% removed, centroid', () => ({ targetClusters: N / 4, compareTo: 'centroid', protectedMask })],
];
for (const [kind, cache] of [
  ['random', random],
  ['structured', structured],
] as const) {
  for (const [name, options] of configs) {
    const r = measure(cache, options);
    const total = r.clusterMs + r.mergeMs;
    pipelineRows.push([
      kind,
      name,
      pct(r.removed),
      ms(r.clusterMs),
      ms(r.mergeMs),
      ms(total),
      Math.round((N * 1000) / total).toLocaleString('en-US'),
      r.error.toFixed(4),
      r.steps.toFixed(1),
    ]);
  }
}
console.log(
  `\nYardstick: a plain JS copy of all ${HEADS} heads' keys and values takes ${copyYardstickMs(structured).toFixed(1)} ms CPU in this run`,
);
printTable(
  `Cluster + merge a full cache: ${HEADS} heads × ${N} tokens × ${D} dims, one core, CPU time (median of ${REPEATS})`,
  ['keys', 'mode', 'removed', 'gsc ms', 'merge ms', 'total ms', 'tokens/s', 'attn rel. err', 'τ search passes/head'],
  pipelineRows,
);
