// Pins the exact bytes semanticache compression leaves in the cache (fp16 and fp32 storage) and the remaps it returns:
// speed work must not change a single bit. The digests were recorded from the reference implementation; update them
// only for intended changes.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compress } from './compress.js';
import type { SemanticacheOptions } from './policies/semanticache.js';
import type { KVDtype } from './store.js';
import { delimiters, randomImportance, syntheticCache } from './test-support.js';

type Extra = Omit<SemanticacheOptions, 'tokenIds' | 'delimiters'>;

function digest(dtype: KVDtype, passes: Extra[], importanceSeed?: number): string {
  const { cache, tokenIds } = syntheticCache({ tokens: 700, headDim: 64, dtype, seed: 5, noise: 0.5 });
  const hash = createHash('sha256');
  for (const extra of passes) {
    const windowImportance = importanceSeed === undefined ? undefined : randomImportance(cache, importanceSeed);
    const result = compress(cache, 'semanticache', {
      tokenIds,
      delimiters,
      preset: 'paper',
      ...extra,
      ...(windowImportance ? { windowImportance } : {}),
    });
    for (const layer of result.remap) for (const remap of layer) hash.update(new Uint8Array(remap.buffer));
  }
  for (let l = 0; l < cache.numLayers; l++) {
    for (const v of cache.heads(l)) {
      for (const a of [v.keys, v.values, v.logSizes, v.positions, v.origins]) {
        hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      }
    }
  }
  return hash.digest('hex').slice(0, 16);
}

const CASES: [string, KVDtype, Extra[], number | undefined, string][] = [
  ['fp16, ratio 0.5', 'float16', [{ budget: { ratio: 0.5 } }], undefined, '3bc9b2476ae1dc74'],
  ['fp32, ratio 0.5', 'float32', [{ budget: { ratio: 0.5 } }], undefined, 'b3c46982c86d37a7'],
  ['fp16, τ = 0.6', 'float16', [{ threshold: 0.6 }], undefined, 'c5d556740cd4aedc'],
  [
    // a ratio counts tokens seen: 0.82 of 700 keeps 126 = 0.6 of the 210 entries the first pass left
    'fp16, ratio 0.7 then 0.82 (cores merge again)',
    'float16',
    [{ budget: { ratio: 0.7 } }, { budget: { ratio: 0.82 } }],
    undefined,
    '06ad3f48b2c9aecf',
  ],
  [
    'fp16, importance seeds and weights, first position',
    'float16',
    [{ budget: { ratio: 0.5 }, seedOrder: 'importance', coreWeights: 'importance', positionMode: 'first' }],
    9,
    '8184334a98ea5ded',
  ],
  ['fp32, few cores', 'float32', [{ budget: { maxEntries: 80 } }], undefined, '575a270be3ad8474'],
  [
    // a fixed τ where the comparison matters (163 cores against 271 with 'seed'; at 80 entries a budget's τ search
    // lands on the same cores whatever it compares with)
    'fp32, centroid, τ = 0.8',
    'float32',
    [{ threshold: 0.8, compareTo: 'centroid' }],
    undefined,
    '18ca3675db1c7179',
  ],
];

/** Knobs a case may set that must change its output (a case that sets one pins it). */
const PINNED_KNOBS = ['seedOrder', 'compareTo', 'positionMode', 'coreWeights'] as const;

describe('semanticache output is pinned', () => {
  for (const [name, dtype, passes, importanceSeed, expected] of CASES) {
    it(name, () => {
      expect(digest(dtype, passes, importanceSeed)).toBe(expected);
      // each knob the case sets is pinned too: left out (its default), the bytes differ
      for (const knob of PINNED_KNOBS) {
        if (!passes.some((pass) => pass[knob] !== undefined)) continue;
        const without = passes.map(({ [knob]: _, ...rest }) => rest);
        expect(digest(dtype, without, importanceSeed), `${knob} left out`).not.toBe(expected);
      }
    });
  }
});
