/**
 * Merging a full 8192-token cache of the demo model's shape (8 layers × 6 KV heads × 64 dims) into cores, one core,
 * CPU time (the machine is shared). Clusters are random groups inside chunks of 32 tokens, at several ratios.
 * Run: pnpm --filter @semanticache/merge bench
 */
import { logSizes, mergeClusters } from '../src/index.js';

const N = 8192;
const D = 64;
const HEADS = 48;
const REPEATS = 5;

let state = 12345;
const random = () => {
  state = (state * 16807) % 2147483647;
  return state / 2147483647;
};
const keys = Float32Array.from({ length: N * D }, () => random() - 0.5);
const values = Float32Array.from({ length: N * D }, () => random() - 0.5);

/** Each chunk of 32 tokens split into round(32·(1−removed)) clusters; ids dense in token order. */
function assignmentFor(removed: number): { assignment: Int32Array; numClusters: number } {
  const assignment = new Int32Array(N);
  const perChunk = Math.max(1, Math.round(32 * (1 - removed)));
  let next = 0;
  for (let start = 0; start < N; start += 32) {
    const labels = Array.from({ length: 32 }, (_, i) => (i < perChunk ? i : Math.floor(random() * perChunk)));
    for (let i = 0; i < 32; i++) assignment[start + i] = next + labels[i];
    next += perChunk;
  }
  return { assignment, numClusters: next };
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

console.log(`\nmergeClusters, ${HEADS} heads × ${N} tokens × ${D} dims, one core, CPU time (median of ${REPEATS})\n`);
console.log('| removed | cores/head | merge ms (48 heads) | logSizes ms (48 heads) | tokens/s |');
console.log('| --- | --- | --- | --- | --- |');
for (const removed of [0, 0.5, 0.75, 0.9]) {
  const { assignment, numClusters } = assignmentFor(removed);
  const mergeTimes: number[] = [];
  const logTimes: number[] = [];
  for (let r = 0; r <= REPEATS; r++) {
    const t0 = cpuMs();
    const cores = [];
    for (let h = 0; h < HEADS; h++) cores.push(mergeClusters({ keys, values, n: N, d: D, assignment, numClusters }));
    const t1 = cpuMs();
    for (const c of cores) logSizes(c.sizes);
    const t2 = cpuMs();
    if (r > 0) {
      mergeTimes.push(t1 - t0);
      logTimes.push(t2 - t1);
    }
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1];
  const merge = median(mergeTimes);
  console.log(
    `| ${(100 * removed).toFixed(0)}% | ${numClusters} | ${merge.toFixed(1)} | ${median(logTimes).toFixed(2)} | ${Math.round((N * 1000) / merge).toLocaleString('en-US')} |`,
  );
}
