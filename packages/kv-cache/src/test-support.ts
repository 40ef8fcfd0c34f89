// Shared fixtures for the tests: a seeded generator, a small vocabulary with sentence delimiters, and caches filled
// with structured synthetic keys (tokens of one sentence share a direction, so clustering has something to find).

import { type DelimiterSet, delimitersFromVocabulary } from '@semanticache/chunker';
import { rng } from '@semanticache/testing';
import type { Importance } from './plan.js';
import { KVCache, type KVDtype } from './store.js';

export { rng };

export function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** ids 0..29 are words, 30 is '.', 31 is '\n'. */
export const VOCABULARY = [...Array.from({ length: 30 }, (_, i) => ` w${i}`), '.', '\n'];
export const PERIOD = 30;
export const delimiters: DelimiterSet = delimitersFromVocabulary(VOCABULARY);

/** Sentences of 5..16 words, each followed by a period. */
export function sentenceIds(n: number, random: () => number): Int32Array {
  const ids = new Int32Array(n);
  let left = 0;
  for (let i = 0; i < n; i++) {
    if (left === 0) {
      left = 5 + Math.floor(random() * 12);
      ids[i] = Math.floor(random() * 30);
    } else if (--left === 0) ids[i] = PERIOD;
    else ids[i] = Math.floor(random() * 30);
  }
  return ids;
}

export interface SyntheticCache {
  cache: KVCache;
  tokenIds: Int32Array;
}

/**
 * A cache whose keys follow the sentence structure: every sentence draws one direction per layer × head, and each
 * token's key is that direction plus `noise`·N(0, 1) per dimension. Values are independent Gaussians.
 */
export function syntheticCache(options: {
  numLayers?: number;
  numKvHeads?: number;
  headDim?: number;
  dtype?: KVDtype;
  tokens: number;
  seed?: number;
  noise?: number;
  blockLength?: number;
}): SyntheticCache {
  const { numLayers = 2, numKvHeads = 2, headDim = 16, dtype = 'float32', tokens, seed = 1, noise = 0.3 } = options;
  const random = rng(seed);
  const tokenIds = sentenceIds(tokens, random);
  const cache = new KVCache({ numLayers, numKvHeads, headDim, dtype, initialCapacity: 8 });
  const H = numKvHeads;
  const d = headDim;
  const directions = new Float32Array(numLayers * H * d);
  const block = options.blockLength ?? tokens;
  for (let from = 0; from < tokens; from += block) {
    const m = Math.min(block, tokens - from);
    const positions = Int32Array.from({ length: m }, (_, t) => from + t);
    for (let l = 0; l < numLayers; l++) {
      const keys = new Float32Array(m * H * d);
      const values = new Float32Array(m * H * d);
      for (let t = 0; t < m; t++) {
        const token = from + t;
        const newSentence = token === 0 || tokenIds[token - 1] === PERIOD;
        for (let h = 0; h < H; h++) {
          const dir = directions.subarray((l * H + h) * d, (l * H + h + 1) * d);
          if (newSentence) for (let j = 0; j < d; j++) dir[j] = gaussian(random);
          for (let j = 0; j < d; j++) {
            keys[(t * H + h) * d + j] = dir[j] + noise * gaussian(random);
            values[(t * H + h) * d + j] = gaussian(random);
          }
        }
      }
      cache.append(l, keys, values, positions);
    }
  }
  return { cache, tokenIds };
}

/** Positive random masses shaped like the cache, [layer][kvHead]. */
export function randomImportance(cache: KVCache, seed: number): Importance {
  const random = rng(seed);
  return Array.from({ length: cache.numLayers }, (_, l) =>
    Array.from({ length: cache.numKvHeads }, (_, h) => {
      const scores = new Float32Array(cache.length(l, h));
      for (let i = 0; i < scores.length; i++) scores[i] = random() ** 3;
      return scores;
    }),
  );
}

/** Deep copy of every head (storage dtype), to compare before/after. */
export function copyHeads(cache: KVCache) {
  return Array.from({ length: cache.numLayers }, (_, l) =>
    cache.heads(l).map((v) => ({
      keys: v.keys.slice(),
      values: v.values.slice(),
      logSizes: v.logSizes.slice(),
      positions: v.positions.slice(),
      origins: v.origins.slice(),
      length: v.length,
    })),
  );
}
