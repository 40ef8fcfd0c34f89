import { checkImportance, type HeadPlan, type Importance } from '../plan.js';
import type { KVCache } from '../store.js';
import { identityRemap, keepEntries, topIndices } from './head-writer.js';
import { type BudgetedOptions, checkCount, type LayerTrace, type PolicyDefinition } from './policy.js';

/** ChunkKV chunk length (the ChunkKV paper's setting; kvpress uses 20). */
export const DEFAULT_CHUNK_LENGTH = 10;

export type ChunkkvOptions = BudgetedOptions & { windowImportance: Importance; chunkLength?: number };

export const chunkkv: PolicyDefinition<'chunkkv', ChunkkvOptions, number> = {
  name: 'chunkkv',
  knobs: ['chunkLength'],
  minKeepMiddle: 0,
  usesBudget: () => true,
  needs: () => ({ window: true, accumulated: false, tokens: false }),
  check: (options) => checkCount('chunkLength', options.chunkLength, DEFAULT_CHUNK_LENGTH),
  compressor(cache, options, chunkLength) {
    const importance = checkImportance('windowImportance', options.windowImportance, cache, 'chunkkv');
    return (layer, plans, trace) => chunkKv(cache, layer, plans, importance, chunkLength, trace);
  },
};

/**
 * ChunkKV: fixed-length chunks of the compressible span, scored by the mean over the chunk of the mass summed over
 * the layer's KV heads; the best chunks are kept for every head of the layer, and the last one chosen is trimmed to
 * its highest-mass entries so the budget is met exactly. Needs every head of the layer to hold the same raw tokens.
 */
function chunkKv(
  cache: KVCache,
  layer: number,
  plans: HeadPlan[],
  importance: Importance,
  chunkLength: number,
  trace?: LayerTrace,
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
  if (trace) {
    const chunks = Uint32Array.from({ length: numChunks + 1 }, (_, c) =>
      Math.min(c * chunkLength, windowStart - sinkEnd),
    );
    for (const head of trace.heads) head.chunks = chunks;
  }
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
