import type { HeadPlan, Importance } from '../plan.js';
import type { KVCache } from '../store.js';
import { identityRemap, keepEntries, topIndices } from './head-writer.js';

export type Pooling = 'max' | 'avg' | 'none';

/** SnapKV-style smoothing of the observation-window mass: a token near a peak is kept with it. */
export const DEFAULT_POOLING: Pooling = 'max';
export const DEFAULT_POOL_KERNEL = 7;
/** ChunkKV chunk length (the ChunkKV paper's setting; kvpress uses 20). */
export const DEFAULT_CHUNK_LENGTH = 10;

/** Pools scores over a centred window of `kernel` entries, clipped at the ends (avg divides by the entries seen). */
export function poolScores(scores: Float32Array, pooling: Pooling, kernel: number): Float32Array {
  const n = scores.length;
  if (pooling === 'none' || kernel === 1) return scores;
  const half = kernel >> 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const from = Math.max(0, i - half);
    const to = Math.min(n, i + half + 1);
    let acc = pooling === 'max' ? Number.NEGATIVE_INFINITY : 0;
    for (let j = from; j < to; j++) acc = pooling === 'max' ? Math.max(acc, scores[j]) : acc + scores[j];
    out[i] = pooling === 'max' ? acc : acc / (to - from);
  }
  return out;
}

/** Keeps the most recent compressible entries (StreamingLLM: sinks + a sliding window). */
export function streamingLlm(cache: KVCache, layer: number, plans: HeadPlan[]): Int32Array[] {
  return plans.map((plan, h) => {
    if (plan.keepMiddle < 0) return identityRemap(plan.length);
    const kept = new Int32Array(plan.keepMiddle);
    for (let i = 0; i < kept.length; i++) kept[i] = plan.windowStart - plan.keepMiddle + i;
    return keepEntries(cache, layer, h, plan, kept);
  });
}

/** Per-head top-k of a score (pooled observation-window mass for SnapKV, accumulated mass for H2O). */
export function scoreTopK(
  cache: KVCache,
  layer: number,
  plans: HeadPlan[],
  importance: Importance,
  pooling: Pooling,
  kernel: number,
): Int32Array[] {
  return plans.map((plan, h) => {
    if (plan.keepMiddle < 0) return identityRemap(plan.length);
    const scores = poolScores(importance[layer][h], pooling, kernel);
    return keepEntries(cache, layer, h, plan, topIndices(scores, plan.sinkEnd, plan.windowStart, plan.keepMiddle));
  });
}

/**
 * ChunkKV: fixed-length chunks of the compressible span, scored by the mean over the chunk of the mass summed over
 * the layer's KV heads; the best chunks are kept for every head of the layer, and the last one chosen is trimmed to
 * its highest-mass entries so the budget is met exactly. Needs every head of the layer to hold the same raw tokens.
 */
export function chunkKv(
  cache: KVCache,
  layer: number,
  plans: HeadPlan[],
  importance: Importance,
  chunkLength: number,
): Int32Array[] {
  const heads = cache.heads(layer);
  const first = plans[0];
  for (let h = 1; h < plans.length; h++) {
    const p = plans[h];
    const same =
      p.length === first.length &&
      p.sinkEnd === first.sinkEnd &&
      p.windowStart === first.windowStart &&
      heads[h].origins.every((o, i) => o === heads[0].origins[i]);
    if (!same) {
      throw new RangeError(
        `chunkkv: layer ${layer} heads hold different entries; chunkkv keeps the same chunks for all heads of a layer`,
      );
    }
  }
  if (first.keepMiddle < 0) return plans.map((p) => identityRemap(p.length));
  const { sinkEnd, windowStart, keepMiddle } = first;
  const summed = new Float64Array(first.length);
  for (let h = 0; h < plans.length; h++) {
    const scores = importance[layer][h];
    for (let i = sinkEnd; i < windowStart; i++) summed[i] += scores[i];
  }
  const numChunks = Math.ceil((windowStart - sinkEnd) / chunkLength);
  const chunkScores = new Float64Array(numChunks);
  for (let c = 0; c < numChunks; c++) {
    const from = sinkEnd + c * chunkLength;
    const to = Math.min(windowStart, from + chunkLength);
    let s = 0;
    for (let i = from; i < to; i++) s += summed[i];
    chunkScores[c] = s / (to - from);
  }
  const byScore = Array.from({ length: numChunks }, (_, c) => c).sort(
    (a, b) => chunkScores[b] - chunkScores[a] || a - b,
  );
  const keep = new Uint8Array(first.length);
  let left = keepMiddle;
  for (const c of byScore) {
    if (left === 0) break;
    const from = sinkEnd + c * chunkLength;
    const to = Math.min(windowStart, from + chunkLength);
    const picked = to - from <= left ? null : topIndices(summed, from, to, left);
    if (picked === null) {
      for (let i = from; i < to; i++) keep[i] = 1;
      left -= to - from;
    } else {
      for (const i of picked) keep[i] = 1;
      left = 0;
    }
  }
  const kept = new Int32Array(keepMiddle);
  let w = 0;
  for (let i = sinkEnd; i < windowStart; i++) if (keep[i]) kept[w++] = i;
  return plans.map((plan, h) => keepEntries(cache, layer, h, plan, kept));
}
