// Integration with the native proportional-attention kernel: the cache's views are its HeadCache, and the
// exactness oracles of SemantiCache hold through it.

import { decode, prefill } from '@semanticache/proportional-attention';
import { describe, expect, it } from 'vitest';
import { compress } from './compress.js';
import { KVCache, type KVDtype } from './store.js';
import { copyHeads, delimiters, gaussian, PERIOD, rng, sentenceIds, syntheticCache } from './test-support.js';

const GROUP = 2; // query heads per KV head (GQA)

function queries(count: number, numHeads: number, d: number, seed: number): Float32Array[] {
  const random = rng(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length: numHeads * d }, () => 2 * gaussian(random)));
}

function decodeAll(cache: KVCache, qs: Float32Array[]): Float32Array[] {
  const out: Float32Array[] = [];
  for (let l = 0; l < cache.numLayers; l++) {
    for (const q of qs) {
      out.push(decode({ q, heads: cache.heads(l), numHeads: cache.numKvHeads * GROUP, headDim: cache.headDim }));
    }
  }
  return out;
}

function maxRelativeError(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((x, i) => {
    x.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - b[i][j]) / Math.max(1, Math.abs(v)));
    });
  });
  return worst;
}

/** A cache where every token of a sentence has the same key and the same value (per layer × head). */
function repeatedSentences(tokens: number, dtype: KVDtype): { cache: KVCache; tokenIds: Int32Array } {
  const random = rng(3);
  const tokenIds = sentenceIds(tokens, random);
  const H = 2;
  const d = 16;
  const cache = new KVCache({ numLayers: 2, numKvHeads: H, headDim: d, dtype });
  for (let l = 0; l < 2; l++) {
    const keys = new Float32Array(tokens * H * d);
    const values = new Float32Array(tokens * H * d);
    for (let t = 0; t < tokens; t++) {
      const fresh = t === 0 || tokenIds[t - 1] === PERIOD;
      for (let x = 0; x < H * d; x++) {
        keys[t * H * d + x] = fresh ? gaussian(random) : keys[(t - 1) * H * d + x];
        values[t * H * d + x] = fresh ? gaussian(random) : values[(t - 1) * H * d + x];
      }
    }
    cache.append(
      l,
      keys,
      values,
      Int32Array.from({ length: tokens }, (_, t) => t),
    );
  }
  return { cache, tokenIds };
}

describe('with the native proportional-attention kernel', () => {
  for (const dtype of ['float32', 'float16'] as const) {
    it(`τ = 1 on distinct keys changes nothing (${dtype}): same entries, same attention output bit for bit`, () => {
      const { cache, tokenIds } = syntheticCache({ tokens: 500, dtype, noise: 0.5 });
      const qs = queries(4, 2 * GROUP, 16, 9);
      const before = copyHeads(cache);
      const outBefore = decodeAll(cache, qs);
      const result = compress(cache, 'semanticache', { tokenIds, delimiters, threshold: 1 });
      expect(result.entriesAfter).toBe(result.entriesBefore);
      expect(copyHeads(cache)).toEqual(before);
      expect(decodeAll(cache, qs)).toEqual(outBefore);
    });

    it(`a cluster of identical keys and values merges losslessly (${dtype}), for any query`, () => {
      const { cache, tokenIds } = repeatedSentences(400, dtype);
      const qs = queries(8, 2 * GROUP, 16, 4);
      const outBefore = decodeAll(cache, qs);
      const result = compress(cache, 'semanticache', { tokenIds, delimiters, threshold: 1 });
      expect(result.entriesAfter).toBeLessThan(result.entriesBefore / 4); // sentences of 5..16 tokens became cores
      // equal up to fp32 summation order
      expect(maxRelativeError(decodeAll(cache, qs), outBefore)).toBeLessThan(1e-5);
      // control: the same cores without the ln(size) bias are far off, so the tolerance above has teeth
      for (let l = 0; l < 2; l++) {
        for (let h = 0; h < 2; h++) {
          const v = cache.head(l, h);
          cache.replace(l, h, { ...v, keys: v.keys.slice(), logSizes: new Float32Array(v.length) });
        }
      }
      expect(maxRelativeError(decodeAll(cache, qs), outBefore)).toBeGreaterThan(1e-2);
    });
  }

  it('a budgeted compression that only merges identical entries is lossless too', () => {
    const { cache, tokenIds } = repeatedSentences(400, 'float32');
    const qs = queries(8, 2 * GROUP, 16, 5);
    const outBefore = decodeAll(cache, qs);
    // one core per sentence: as many entries as the τ = 1 run leaves
    const probe = repeatedSentences(400, 'float32').cache;
    compress(probe, 'semanticache', { tokenIds, delimiters, threshold: 1 });
    compress(cache, 'semanticache', {
      tokenIds,
      delimiters,
      preset: 'paper',
      budget: { maxEntries: probe.length(0, 0) },
    });
    expect(cache.length(0, 0)).toBe(probe.length(0, 0));
    expect(maxRelativeError(decodeAll(cache, qs), outBefore)).toBeLessThan(1e-5);
  });

  it('prefill over the cache views yields attention mass that drives the scoring policies', () => {
    const tokens = 256;
    const block = 64;
    const H = 2;
    const d = 16;
    const { cache: source } = syntheticCache({ tokens, numLayers: 1, numKvHeads: H, headDim: d });
    const cache = new KVCache({ numLayers: 1, numKvHeads: H, headDim: d, dtype: 'float16' });
    const random = rng(8);
    const mass = [Array.from({ length: H }, () => new Float32Array(tokens))];
    const srcKeys = [0, 1].map((h) => source.readFloat32(0, h, 'keys'));
    const srcValues = [0, 1].map((h) => source.readFloat32(0, h, 'values'));
    for (let from = 0; from < tokens; from += block) {
      const keys = new Float32Array(block * H * d);
      const values = new Float32Array(block * H * d);
      for (let t = 0; t < block; t++) {
        for (let h = 0; h < H; h++) {
          keys.set(srcKeys[h].subarray((from + t) * d, (from + t + 1) * d), (t * H + h) * d);
          values.set(srcValues[h].subarray((from + t) * d, (from + t + 1) * d), (t * H + h) * d);
        }
      }
      cache.append(
        0,
        keys,
        values,
        Int32Array.from({ length: block }, (_, t) => from + t),
      );
      const q = Float32Array.from({ length: block * H * GROUP * d }, () => gaussian(random));
      const last = from + block === tokens;
      const out = prefill({
        q,
        heads: cache.heads(0),
        numHeads: H * GROUP,
        headDim: d,
        blockLength: block,
        ...(last ? { attentionMass: mass[0] } : {}),
      });
      expect(out.length).toBe(block * H * GROUP * d);
      expect(out.every(Number.isFinite)).toBe(true);
    }
    // each of the last block's queries spreads mass 1 per query head over the keys it sees
    const total = mass[0].reduce((s, m) => s + m.reduce((a, b) => a + b, 0), 0);
    expect(total).toBeCloseTo(block * H * GROUP, 2);
    compress(cache, 'snapkv', { budget: { ratio: 0.5 }, windowImportance: mass });
    expect(cache.length(0, 1)).toBe(128);
  });
});
