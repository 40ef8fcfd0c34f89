import { checkImportance, type HeadPlan, type Importance } from '../plan.js';
import type { KVCache } from '../store.js';
import { HeadWriter, identityRemap, topIndices } from './head-writer.js';
import { nearestTargets } from './nearest-key.js';
import { nearestTargetsSimd } from './nearest-key-simd.js';
import type { BudgetedOptions, PolicyDefinition } from './policy.js';
import { checkPooling, POOLING_KEYS, type PooledScoreOptions, type Pooling, poolScores } from './pooling.js';

export type MergeValuesOptions = BudgetedOptions & PooledScoreOptions & { windowImportance: Importance };

/** SnapKV's eviction, with each evicted value folded into the most similar kept key's value (kvpress MergingPress). */
export const mergeValuesPolicy: PolicyDefinition<
  'merge-values',
  MergeValuesOptions,
  ReturnType<typeof checkPooling>
> = {
  name: 'merge-values',
  knobs: POOLING_KEYS,
  minKeepMiddle: 1,
  usesBudget: () => true,
  needs: () => ({ window: true, accumulated: false, tokens: false }),
  check: (options) => checkPooling(options),
  compressor(cache, options, { pooling, size }) {
    const importance = checkImportance('windowImportance', options.windowImportance, cache, 'merge-values');
    return (layer, plans) => mergeValues(cache, layer, plans, importance, pooling, size);
  },
};

/**
 * Evicts by pooled observation-window mass like SnapKV, then folds each evicted VALUE into the kept compressible
 * entry whose key is most cosine-similar (kvpress MergingPress): w = max(cos, 0)·‖v_e‖/(‖v_e‖ + ‖v_t‖),
 * v_t ← (v_t + Σ w·v_e)/(1 + Σ w). Keys, sizes and positions are untouched: no proportional-attention bias.
 * Protected entries are never merge targets. The old → new map sends an evicted entry to its target. The search is
 * exact (every kept key is scored; ties go to the lowest index) and runs in a WebAssembly SIMD module where available,
 * bitwise equal to the scalar fallback.
 */
function mergeValues(
  cache: KVCache,
  layer: number,
  plans: HeadPlan[],
  importance: Importance,
  pooling: Pooling,
  size: number,
): Int32Array[] {
  const d = cache.headDim;
  return plans.map((plan, h) => {
    if (plan.keepMiddle < 0) return identityRemap(plan.length);
    const { sinkEnd, windowStart, length } = plan;
    const scores = poolScores(importance[layer][h], pooling, size);
    const kept = topIndices(scores, sinkEnd, windowStart, plan.keepMiddle);
    const keys = cache.readFloat32(layer, h, 'keys');
    const values = cache.readFloat32(layer, h, 'values');
    const isKept = new Uint8Array(length);
    for (const i of kept) isKept[i] = 1;

    // unit keys of the targets, packed, so the search is one dot product per pair
    const k = kept.length;
    const unitKeys = new Float32Array(k * d);
    const valueNorms = new Float64Array(length);
    for (let i = 0; i < length; i++) valueNorms[i] = Math.sqrt(dot(values, i * d, values, i * d, d));
    for (let t = 0; t < k; t++) {
      const o = kept[t] * d;
      const norm = Math.sqrt(dot(keys, o, keys, o, d));
      const inv = norm > 0 ? 1 / norm : 0;
      for (let j = 0; j < d; j++) unitKeys[t * d + j] = keys[o + j] * inv;
    }
    // the evicted compressible entries' raw keys, packed, then one exact search for all of them
    let evictedCount = 0;
    for (let e = sinkEnd; e < windowStart; e++) if (!isKept[e]) evictedCount++;
    const evicted = new Int32Array(evictedCount);
    const evictedKeys = new Float32Array(evictedCount * d);
    for (let e = sinkEnd, n = 0; e < windowStart; e++) {
      if (isKept[e]) continue;
      evicted[n] = e;
      evictedKeys.set(keys.subarray(e * d, (e + 1) * d), n * d);
      n++;
    }
    const nearest = new Int32Array(evictedCount);
    const simd = nearestTargetsSimd();
    if (simd === null || !simd(evictedKeys, evictedCount, unitKeys, k, d, nearest)) {
      nearestTargets(evictedKeys, evictedCount, unitKeys, k, d, nearest);
    }

    const added = new Float64Array(k * d);
    const weightSums = new Float64Array(k);
    const targetOf = new Int32Array(length).fill(-1);
    for (let n = 0; n < evictedCount && k > 0; n++) {
      const e = evicted[n];
      const oe = e * d;
      const best = nearest[n];
      targetOf[e] = best;
      const keyNorm = Math.sqrt(dot(keys, oe, keys, oe, d));
      const cos = keyNorm > 0 ? dot(keys, oe, unitKeys, best * d, d) / keyNorm : 0;
      const ve = valueNorms[e];
      const vt = valueNorms[kept[best]];
      const w = cos > 0 && ve + vt > 0 ? (cos * ve) / (ve + vt) : 0;
      if (w === 0) continue;
      weightSums[best] += w;
      for (let j = 0; j < d; j++) added[best * d + j] += w * values[oe + j];
    }

    const view = cache.head(layer, h);
    const writer = new HeadWriter(cache, sinkEnd + k + (length - windowStart));
    const remap = new Int32Array(length).fill(-1);
    const row = new Float32Array(d);
    for (let i = 0; i < sinkEnd; i++) remap[i] = writer.copy(view, i);
    for (let t = 0; t < k; t++) {
      const i = kept[t];
      if (weightSums[t] === 0) remap[i] = writer.copy(view, i);
      else {
        const scale = 1 / (1 + weightSums[t]);
        for (let j = 0; j < d; j++) row[j] = (values[i * d + j] + added[t * d + j]) * scale;
        remap[i] = writer.copyWithValue(view, i, row);
      }
    }
    for (let i = windowStart; i < length; i++) remap[i] = writer.copy(view, i);
    for (let e = sinkEnd; e < windowStart; e++) if (targetOf[e] >= 0) remap[e] = remap[kept[targetOf[e]]];
    writer.commit(cache, layer, h);
    return remap;
  });
}

function dot(a: Float32Array, oa: number, b: Float32Array, ob: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < d; j += 4) {
    s0 += a[oa + j] * b[ob + j];
    s1 += a[oa + j + 1] * b[ob + j + 1];
    s2 += a[oa + j + 2] * b[ob + j + 2];
    s3 += a[oa + j + 3] * b[ob + j + 3];
  }
  for (; j < d; j++) s0 += a[oa + j] * b[ob + j];
  return s0 + s1 + (s2 + s3);
}
