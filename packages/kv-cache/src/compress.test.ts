import { describe, expect, it } from 'vitest';
import { checkPolicyOptions, compress, remapImportance } from './compress.js';
import { MissingImportanceError } from './errors.js';
import type { Budget } from './plan.js';
import { POLICIES, type PolicyName } from './registry.js';
import { KVCache } from './store.js';
import { copyHeads, delimiters, randomImportance, syntheticCache } from './test-support.js';
import { needsCompression, triggerBudget } from './triggers.js';

const SINKS = 4;
const WINDOW = 32;

function sizeSum(cache: KVCache, layer: number, head: number): number {
  let total = 0;
  for (const ls of cache.head(layer, head).logSizes) total += Math.round(Math.exp(ls));
  return total;
}

function runPolicy(policy: PolicyName, cache: KVCache, tokenIds: Int32Array, budget: Budget, preset?: string) {
  const windowImportance = randomImportance(cache, 11);
  const accumulatedImportance = randomImportance(cache, 12);
  return compress(cache, policy, {
    budget,
    tokenIds,
    delimiters,
    windowImportance,
    accumulatedImportance,
    ...(preset ? { preset } : {}),
  } as never);
}

/** Sinks and window entries of every head, by origin, must be bit-identical after compression. */
function expectProtectedUntouched(before: ReturnType<typeof copyHeads>, cache: KVCache): void {
  const d = cache.headDim;
  for (let l = 0; l < cache.numLayers; l++) {
    const windowFrom = cache.appendedTokens(l) - WINDOW;
    for (let h = 0; h < cache.numKvHeads; h++) {
      const old = before[l][h];
      const now = cache.head(l, h);
      const protectedOld: number[] = [];
      for (let i = 0; i < old.length; i++)
        if (old.origins[i] < SINKS || old.origins[i] >= windowFrom) protectedOld.push(i);
      const nowIndex = new Map<number, number>();
      for (let i = 0; i < now.length; i++) nowIndex.set(now.origins[i], i);
      for (const i of protectedOld) {
        const j = nowIndex.get(old.origins[i]);
        expect(j, `layer ${l} head ${h} origin ${old.origins[i]} kept`).toBeDefined();
        expect(Array.from(now.keys.subarray(j! * d, (j! + 1) * d))).toEqual(
          Array.from(old.keys.subarray(i * d, (i + 1) * d)),
        );
        expect(Array.from(now.values.subarray(j! * d, (j! + 1) * d))).toEqual(
          Array.from(old.values.subarray(i * d, (i + 1) * d)),
        );
        expect(now.positions[j!]).toBe(old.positions[i]);
        expect(now.logSizes[j!]).toBe(old.logSizes[i]);
      }
      expect(now.origins.subarray(0, SINKS)).toEqual(Int32Array.from([0, 1, 2, 3]));
    }
  }
}

describe('compress: budgets and protection', () => {
  const budgeted: [PolicyName, string?][] = POLICIES.filter((p) => p !== 'full').map((p) => [p]);
  budgeted.push(['semanticache', 'paper']);
  for (const [policy, preset] of budgeted) {
    const name = preset ? `${policy}:${preset}` : policy;
    for (const dtype of ['float32', 'float16'] as const) {
      for (const budget of [{ ratio: 0.5 }, { ratio: 0.75 }, { maxEntries: 100 }] as Budget[]) {
        it(`${name} (${dtype}) meets ${JSON.stringify(budget)} exactly and keeps sinks and window intact`, () => {
          const { cache, tokenIds } = syntheticCache({ tokens: 403, dtype, numLayers: 2, numKvHeads: 3, headDim: 16 });
          const before = copyHeads(cache);
          const result = runPolicy(policy, cache, tokenIds, budget, preset);
          const expected = 'ratio' in budget ? Math.floor(403 * (1 - budget.ratio) + 1e-9) : 100;
          // semanticache's default shares a layer's seats among its heads under a ratio (AdaKV); a cap is per head
          const perLayer = name === 'semanticache' && 'ratio' in budget;
          for (let l = 0; l < 2; l++) {
            if (perLayer) expect(cache.length(l, 0) + cache.length(l, 1) + cache.length(l, 2)).toBe(3 * expected);
            else for (let h = 0; h < 3; h++) expect(cache.length(l, h)).toBe(expected);
          }
          expect(result.entriesBefore).toBe(403 * 6);
          expect(result.entriesAfter).toBe(expected * 6);
          expectProtectedUntouched(before, cache);
          if (name === 'semanticache:paper') {
            // every token lives on in exactly one core
            for (let l = 0; l < 2; l++) for (let h = 0; h < 3; h++) expect(sizeSum(cache, l, h)).toBe(403);
          } else if (policy === 'semanticache') {
            // a core's weight lies between one token's and its members' count
            for (let l = 0; l < 2; l++) {
              for (let h = 0; h < 3; h++) {
                const { logSizes, length } = cache.head(l, h);
                const members = new Int32Array(length);
                for (const target of result.remap[l][h]) if (target >= 0) members[target]++;
                for (let i = 0; i < length; i++) {
                  expect(logSizes[i]).toBeGreaterThanOrEqual(0);
                  expect(Math.exp(logSizes[i])).toBeLessThanOrEqual(members[i] * (1 + 1e-6));
                }
              }
            }
          } else if (policy !== 'merge-values') {
            // eviction keeps entries verbatim: every survivor matches its original row
            const view = cache.head(1, 2);
            const old = before[1][2];
            for (let i = 0; i < view.length; i++) {
              const o = view.origins[i];
              expect(view.keys[i * 16 + 5]).toBe(old.keys[o * 16 + 5]);
              expect(view.values[i * 16 + 9]).toBe(old.values[o * 16 + 9]);
            }
          }
          for (const heads of result.remap) for (const map of heads) expect(map.length).toBe(403);
          // what a policy leaves behind is a cache like any other: it survives a snapshot round trip bit for bit
          expect(copyHeads(KVCache.restore(cache.snapshot()))).toEqual(copyHeads(cache));
        });
      }
    }
  }

  it('full changes nothing, bit for bit', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 200, dtype: 'float16' });
    const before = copyHeads(cache);
    const snapshot = cache.snapshot();
    const result = runPolicy('full', cache, tokenIds, { ratio: 0.9 });
    expect(copyHeads(cache)).toEqual(before);
    expect(cache.snapshot()).toEqual(snapshot);
    expect(result.entriesAfter).toBe(result.entriesBefore);
  });

  it('a budget below the protected entries is a ceiling: they stay, merging policies keep one core, and it is counted', () => {
    for (const [policy, preset] of [...budgeted, ['full'] as [PolicyName]]) {
      for (const budget of [{ maxEntries: 35 }, { maxEntries: 1 }, { ratio: 0.99 }] as Budget[]) {
        const { cache, tokenIds } = syntheticCache({ tokens: 100, numLayers: 2, numKvHeads: 3, headDim: 16 });
        const before = copyHeads(cache);
        const result = runPolicy(policy, cache, tokenIds, budget, preset);
        const merging = policy === 'semanticache' || policy === 'merge-values';
        const expected = policy === 'full' ? 100 : SINKS + WINDOW + (merging ? 1 : 0);
        for (let l = 0; l < 2; l++) for (let h = 0; h < 3; h++) expect(cache.length(l, h)).toBe(expected);
        expect(result.headsAboveBudget).toBe(policy === 'full' ? 0 : 6);
        expectProtectedUntouched(before, cache);
      }
    }
  });

  it('a ratio counts the tokens a head has seen: compressing again after new tokens does not compound', () => {
    for (const [policy, preset] of budgeted) {
      const { cache, tokenIds } = syntheticCache({ tokens: 600, numLayers: 1, numKvHeads: 2, blockLength: 50 });
      const growing = syntheticCache({ tokens: 200, numLayers: 1, numKvHeads: 2, blockLength: 50 }).cache;
      for (let turn = 1; turn <= 3; turn++) {
        const result = runPolicy(policy, growing, tokenIds, { ratio: 0.5 }, preset);
        expect(result.headsAboveBudget).toBe(0);
        // per layer: semanticache's default may share seats among heads
        expect(growing.length(0, 0) + growing.length(0, 1)).toBe(2 * Math.floor(growing.appendedTokens(0) * 0.5));
        // the same ratio again right away removes nothing
        const again = runPolicy(policy, growing, tokenIds, { ratio: 0.5 }, preset);
        expect(again.entriesAfter).toBe(again.entriesBefore);
        if (turn === 3) break;
        for (let t = turn * 200; t < (turn + 1) * 200; t++) {
          const keys = new Float32Array(2 * 16);
          const values = new Float32Array(2 * 16);
          for (let h = 0; h < 2; h++) {
            keys.set(cache.readFloat32(0, h, 'keys').subarray(t * 16, t * 16 + 16), h * 16);
            values.set(cache.readFloat32(0, h, 'values').subarray(t * 16, t * 16 + 16), h * 16);
          }
          growing.append(0, keys, values, Int32Array.from([t]));
        }
      }
      expect(growing.appendedTokens(0)).toBe(600);
    }
  });

  it('leaves heads already within budget as they are', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 120 });
    const before = copyHeads(cache);
    for (const policy of POLICIES) runPolicy(policy, cache, tokenIds, { maxEntries: 120 });
    expect(copyHeads(cache)).toEqual(before);
  });
});

describe('compress: policy behaviour', () => {
  it('streaming-llm keeps the sinks and the most recent entries', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 100 });
    runPolicy('streaming-llm', cache, tokenIds, { maxEntries: 50 });
    const expected = [0, 1, 2, 3, ...Array.from({ length: 46 }, (_, i) => 54 + i)];
    expect(Array.from(cache.head(1, 1).origins)).toEqual(expected);
  });

  it('snapkv keeps the pooled neighbourhood of a mass peak; h2o the raw top of accumulated mass', () => {
    const { cache } = syntheticCache({ tokens: 100, numLayers: 1, numKvHeads: 1 });
    const scores = new Float32Array(100).fill(0.01);
    scores[40] = 5;
    scores[60] = 4;
    const importance = [[scores]];
    const snap = syntheticCache({ tokens: 100, numLayers: 1, numKvHeads: 1 }).cache;
    compress(snap, 'snapkv', { budget: { maxEntries: 4 + 32 + 7 }, windowImportance: importance });
    expect(Array.from(snap.head(0, 0).origins.subarray(4, 11))).toEqual([37, 38, 39, 40, 41, 42, 43]);
    compress(cache, 'h2o', { budget: { maxEntries: 4 + 32 + 2 }, accumulatedImportance: importance });
    expect(Array.from(cache.head(0, 0).origins.subarray(4, 6))).toEqual([40, 60]);
  });

  it('chunkkv keeps the same whole chunks in every head, trimming only the last one', () => {
    const { cache } = syntheticCache({ tokens: 136, numKvHeads: 3 });
    // compressible span: entries 4..103 = 10 chunks of 10; mass makes chunks 2 and 7 best, then chunk 5
    const importance = [0, 1].map(() =>
      [0, 1, 2].map((h) => {
        const s = new Float32Array(136).fill(0.01);
        for (let i = 24; i < 34; i++) s[i] = h === 0 ? 3 : 0.5; // chunk 2, carried by head 0 alone
        for (let i = 74; i < 84; i++) s[i] = 1; // chunk 7
        for (let i = 54; i < 64; i++) s[i] = 0.2 + (i === 60 ? 1 : 0) + (i === 57 ? 0.5 : 0); // chunk 5
        return s;
      }),
    );
    compress(cache, 'chunkkv', { budget: { maxEntries: 36 + 22 }, windowImportance: importance });
    const expected = [
      ...Array.from({ length: 10 }, (_, i) => 24 + i),
      57,
      60,
      ...Array.from({ length: 10 }, (_, i) => 74 + i),
    ];
    for (let h = 0; h < 3; h++) expect(Array.from(cache.head(0, h).origins.subarray(4, 26))).toEqual(expected);
  });

  it('merge-values folds evicted values into the most similar kept key (kvpress MergingPress weights)', () => {
    const { cache } = syntheticCache({ tokens: 40, numLayers: 1, numKvHeads: 1, headDim: 2 });
    // compressible entries 4..7; keep 4 and 6, evict 5 (close to 4's key) and 7 (orthogonal to both kept keys)
    const v = cache.head(0, 0);
    const keys = v.keys.slice();
    const values = v.values.slice();
    keys.set([1, 0, 0.8, 0.6, 0, 1, -1, 0], 8);
    values.set([1, 0, 0, 2, 5, 5, 9, 9], 8);
    cache.replace(0, 0, { ...v, keys, values });
    const scores = new Float32Array(40).fill(0);
    scores[4] = 1;
    scores[6] = 1;
    const remap = compress(cache, 'merge-values', {
      budget: { maxEntries: 38 },
      windowImportance: [[scores]],
      pooling: 'none',
    }).remap[0][0];
    const after = cache.head(0, 0);
    expect(Array.from(after.origins.subarray(4, 6))).toEqual([4, 6]);
    // v_e = (0, 2) into target 4 (v_t = (1, 0)): cos 0.8, w = 0.8 · 2 / (2 + 1)
    const w = (0.8 * 2) / 3;
    expect(after.values[8]).toBeCloseTo((1 + 0) / (1 + w), 6);
    expect(after.values[9]).toBeCloseTo((0 + 2 * w) / (1 + w), 6);
    expect(Array.from(after.values.subarray(10, 12))).toEqual([5, 5]); // entry 6 got nothing: entry 7 has cos 0
    expect(Array.from(after.keys.subarray(8, 12))).toEqual([1, 0, 0, 1]); // keys untouched
    expect(Array.from(after.logSizes)).toEqual(new Array(38).fill(0)); // no bias
    expect(remap[5]).toBe(4);
  });

  // second shape: 93 kept, 74 evicted, 13 dims; neither count a multiple of the search's 4-query or 6-target blocks
  it.each([
    [160, 16, 0.5, 44],
    [203, 13, 0.36, 93],
  ])(
    'merge-values matches a brute-force search for the most similar kept key (%i tokens × %i dims, ratio %f)',
    (tokens, d, ratio, keptCount) => {
      const { cache } = syntheticCache({ tokens, headDim: d, numLayers: 1, numKvHeads: 1, noise: 1 });
      const windowStart = tokens - 32;
      const before = cache.head(0, 0);
      const keys = before.keys.slice() as Float32Array;
      const values = before.values.slice() as Float32Array;
      const importance = randomImportance(cache, 9);
      compress(cache, 'merge-values', { budget: { ratio }, windowImportance: importance, pooling: 'none' });
      const after = cache.head(0, 0);
      const keptOrigins = Array.from(after.origins).filter((o) => o >= 4 && o < windowStart);
      expect(keptOrigins.length).toBe(keptCount);
      const kept = new Set(keptOrigins);
      const norm = (m: Float32Array, i: number) => Math.hypot(...m.subarray(i * d, (i + 1) * d));
      const cosine = (a: number, b: number) => {
        let s = 0;
        for (let j = 0; j < d; j++) s += keys[a * d + j] * keys[b * d + j];
        return s / (norm(keys, a) * norm(keys, b));
      };
      const sums = new Map(keptOrigins.map((t) => [t, { w: 0, v: new Float64Array(d) }]));
      for (let e = 4; e < windowStart; e++) {
        if (kept.has(e)) continue;
        let best = keptOrigins[0];
        for (const t of keptOrigins) if (cosine(e, t) > cosine(e, best)) best = t;
        const cos = cosine(e, best);
        const w = cos > 0 ? (cos * norm(values, e)) / (norm(values, e) + norm(values, best)) : 0;
        const acc = sums.get(best)!;
        acc.w += w;
        for (let j = 0; j < d; j++) acc.v[j] += w * values[e * d + j];
      }
      let merged = 0;
      for (let i = 0; i < after.length; i++) {
        const t = after.origins[i];
        const acc = sums.get(t);
        if (!acc) continue;
        if (acc.w > 0) merged++;
        for (let j = 0; j < d; j++) {
          expect(after.values[i * d + j]).toBeCloseTo((values[t * d + j] + acc.v[j]) / (1 + acc.w), 5);
        }
      }
      expect(merged).toBeGreaterThan(10);
    },
  );

  it('compresses again during decode: sizes always add up to the tokens seen', () => {
    const { cache, tokenIds } = syntheticCache({
      tokens: 600,
      numLayers: 2,
      numKvHeads: 2,
      dtype: 'float16',
      blockLength: 50,
    });
    const trigger = { maxEntries: 160, targetEntries: 120 };
    // prefill of the first 300 tokens, compressed once, then decode one token at a time
    const prefill = syntheticCache({ tokens: 300, numLayers: 2, numKvHeads: 2, dtype: 'float16', blockLength: 50 });
    compress(prefill.cache, 'semanticache', { tokenIds, delimiters, preset: 'paper', budget: { ratio: 0.5 } });
    const source = cache;
    let compressions = 0;
    for (let t = 300; t < 600; t++) {
      for (let l = 0; l < 2; l++) {
        const keys = new Float32Array(2 * 16);
        const values = new Float32Array(2 * 16);
        for (let h = 0; h < 2; h++) {
          const view = source.head(l, h);
          keys.set(source.readFloat32(l, h, 'keys').subarray(t * 16, t * 16 + 16), h * 16);
          values.set(source.readFloat32(l, h, 'values').subarray(t * 16, t * 16 + 16), h * 16);
          expect(view.origins[t]).toBe(t);
        }
        prefill.cache.append(l, keys, values, Int32Array.from([t]));
      }
      if (needsCompression(prefill.cache, trigger)) {
        compress(prefill.cache, 'semanticache', {
          tokenIds,
          delimiters,
          preset: 'paper',
          budget: triggerBudget(trigger),
        });
        compressions++;
        for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) expect(prefill.cache.length(l, h)).toBe(120);
      }
    }
    expect(compressions).toBeGreaterThan(3);
    for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) expect(sizeSum(prefill.cache, l, h)).toBe(600);
    // a core's (mean) position lies between its first token and the last token seen
    const { positions, origins } = prefill.cache.head(1, 1);
    for (let i = 0; i < positions.length; i++) {
      expect(positions[i]).toBeGreaterThanOrEqual(origins[i]);
      expect(positions[i]).toBeLessThan(600);
    }
  });

  it('semanticache joins adjacent chunks when the budget asks for fewer cores than there are chunks', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 403 });
    compress(cache, 'semanticache', { tokenIds, delimiters, preset: 'paper', budget: { maxEntries: 36 + 5 } });
    for (let l = 0; l < 2; l++) {
      for (let h = 0; h < 2; h++) {
        expect(cache.length(l, h)).toBe(41);
        expect(sizeSum(cache, l, h)).toBe(403);
      }
    }
  });

  it('semanticache passes seed order, comparison, position mode and core weights through', () => {
    const knobs = {
      seedOrder: 'importance',
      compareTo: 'centroid',
      positionMode: 'first',
      coreWeights: 'importance',
    } as const;
    const run = (options: Partial<typeof knobs>) => {
      const { cache, tokenIds } = syntheticCache({ tokens: 300, dtype: 'float16' });
      const windowImportance = randomImportance(cache, 3);
      compress(cache, 'semanticache', {
        tokenIds,
        delimiters,
        budget: { ratio: 0.6 },
        preset: 'paper',
        windowImportance,
        ...options,
      });
      return cache;
    };
    const cache = run(knobs);
    for (let l = 0; l < 2; l++) {
      for (let h = 0; h < 2; h++) {
        const { positions, origins, length } = cache.head(l, h);
        expect(length).toBe(120);
        expect(sizeSum(cache, l, h)).toBe(300);
        // 'first': a core sits at its earliest member's position, which is its origin here
        for (let i = 0; i < length; i++) expect(positions[i]).toBe(origins[i]);
      }
    }
    // each knob reaches the policy: with it left out (its default) the cache comes out different
    const bytes = cache.snapshot();
    for (const knob of Object.keys(knobs) as (keyof typeof knobs)[]) {
      const { [knob]: _, ...rest } = knobs;
      expect(run(rest).snapshot(), `${knob} left out`).not.toEqual(bytes);
    }
  });

  it('remapImportance carries mass across a compression', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 300 });
    const mass = randomImportance(cache, 5);
    const result = compress(cache, 'semanticache', { tokenIds, delimiters, preset: 'paper', budget: { ratio: 0.7 } });
    const carried = remapImportance(mass, result, cache);
    const total = (t: Float32Array[][]) => t.flat().reduce((s, a) => s + a.reduce((x, y) => x + y, 0), 0);
    expect(carried[1][1].length).toBe(cache.length(1, 1));
    expect(total(carried)).toBeCloseTo(total(mass), 2);
  });
});

describe('compress: bad input', () => {
  it('checkPolicyOptions rejects bad values and unknown option names without a cache, naming them', () => {
    for (const policy of POLICIES) {
      expect(() => checkPolicyOptions(policy, { sinkTokens: -1 })).toThrow(/sinkTokens/);
      expect(() => checkPolicyOptions(policy, { recentWindw: 8 } as never)).toThrow(
        new RegExp(`recentWindw: not an option of policy '${policy}'`),
      );
      expect(() => checkPolicyOptions(policy, { budget: { ratio: 1 } })).toThrow(/budget.ratio/);
      expect(() =>
        checkPolicyOptions(policy, { sinkTokens: 2, recentWindow: 8, budget: { ratio: 0.5 } }),
      ).not.toThrow();
    }
    expect(() => checkPolicyOptions('semanticache', { threshold: 5 })).toThrow(/threshold: expected a cosine/);
    expect(() => checkPolicyOptions('semanticache', { preset: 'paper', threshold: 0.9 })).not.toThrow();
    expect(() => checkPolicyOptions('semanticache', { threshold: 0.9, seeds: 'importance' })).toThrow(/seeds 'gsc'/);
    expect(() => checkPolicyOptions('semanticache', { maxChunkLength: 3, minChunkLength: 4 })).toThrow(/maxLength/);
    expect(() => checkPolicyOptions('semanticache', { memberMassCap: -1 })).toThrow(/memberMassCap/);
    expect(() => checkPolicyOptions('semanticache', { chunkLength: 8 } as never)).toThrow(/chunkLength: not an option/);
    expect(() => checkPolicyOptions('chunkkv', { chunkLength: 0 })).toThrow(/chunkLength/);
    expect(() => checkPolicyOptions('snapkv', { poolSize: 4 })).toThrow(/poolSize/);
    expect(() => checkPolicyOptions('h2o', { pooling: 'max' } as never)).toThrow(
      /pooling: not an option of policy 'h2o'/,
    );
    // the same check runs inside compress, before the cache is touched
    const { cache, tokenIds } = syntheticCache({ tokens: 100 });
    const before = copyHeads(cache);
    expect(() =>
      compress(cache, 'snapkv', {
        budget: { ratio: 0.5 },
        windowImportance: randomImportance(cache, 1),
        poolKernal: 5,
      } as never),
    ).toThrow(/poolKernal/);
    expect(() =>
      compress(cache, 'semanticache', { budget: { ratio: 0.5 }, tokenIds, delimiters, seed: 1 } as never),
    ).toThrow(/seed: not an option/);
    expect(copyHeads(cache)).toEqual(before);
  });

  it('throws typed errors and leaves the cache untouched', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 100 });
    const before = copyHeads(cache);
    const good = randomImportance(cache, 1);
    expect(() => compress(cache, 'lru' as PolicyName, { budget: { ratio: 0.5 } } as never)).toThrow(/unknown 'lru'/);
    expect(() => compress(cache, 'streaming-llm', { budget: { ratio: 1 } })).toThrow(RangeError);
    expect(() => compress(cache, 'streaming-llm', { budget: { ratio: -0.1 } })).toThrow(/budget.ratio/);
    expect(() => compress(cache, 'streaming-llm', { budget: { maxEntries: 0 } })).toThrow(/budget.maxEntries/);
    expect(() => compress(cache, 'streaming-llm', { budget: { maxEntries: 2.5 } })).toThrow(RangeError);
    expect(() => compress(cache, 'streaming-llm', {} as never)).toThrow(TypeError);
    expect(() => compress(cache, 'streaming-llm', { budget: { ratio: 0.5, maxEntries: 3 } } as never)).toThrow(
      TypeError,
    );
    expect(() => compress(cache, 'streaming-llm', { budget: { ratio: 0.5 }, sinkTokens: -1 })).toThrow(/sinkTokens/);
    expect(() => compress(cache, 'snapkv', { budget: { ratio: 0.5 } } as never)).toThrow(MissingImportanceError);
    expect(() => compress(cache, 'h2o', { budget: { ratio: 0.5 }, windowImportance: good } as never)).toThrow(
      /accumulatedImportance/,
    );
    const short = good.map((heads) => heads.map((s) => s.subarray(1)));
    expect(() => compress(cache, 'snapkv', { budget: { ratio: 0.5 }, windowImportance: short })).toThrow(
      /windowImportance\[0\]\[0\]: expected 100 entries/,
    );
    expect(() => compress(cache, 'snapkv', { budget: { ratio: 0.5 }, windowImportance: good.slice(1) })).toThrow(
      TypeError,
    );
    const negative = good.map((heads) => heads.map((s) => s.slice()));
    negative[1][0][7] = Number.NaN;
    expect(() => compress(cache, 'chunkkv', { budget: { ratio: 0.5 }, windowImportance: negative })).toThrow(
      /\[1\]\[0\]\[7\]/,
    );
    expect(() => compress(cache, 'snapkv', { budget: { ratio: 0.5 }, windowImportance: good, poolSize: 4 })).toThrow(
      /poolSize/,
    );
    expect(() =>
      compress(cache, 'semanticache', { budget: { ratio: 0.5 }, tokenIds: tokenIds.subarray(5), delimiters }),
    ).toThrow(/tokenIds/);
    expect(() => compress(cache, 'semanticache', { budget: { ratio: 0.5 }, tokenIds } as never)).toThrow(/delimiters/);
    expect(() => compress(cache, 'semanticache', { tokenIds, delimiters })).toThrow(/budget/);
    expect(() => compress(cache, 'semanticache', { tokenIds, delimiters, threshold: 1.5 })).toThrow(/threshold/);
    expect(() =>
      compress(cache, 'semanticache', {
        tokenIds,
        delimiters,
        budget: { ratio: 0.5 },
        preset: 'paper',
        seedOrder: 'importance',
      }),
    ).toThrow(MissingImportanceError);
    // the default preset seeds cores by window mass: it names itself when that is missing
    expect(() => compress(cache, 'semanticache', { tokenIds, delimiters, budget: { ratio: 0.5 } })).toThrow(
      /windowImportance.*preset 'default'/,
    );
    expect(() =>
      compress(cache, 'semanticache', { tokenIds, delimiters, budget: { ratio: 0.5 }, preset: 'nope' as never }),
    ).toThrow(/preset: expected 'default' or 'paper'/);
    expect(() =>
      compress(cache, 'semanticache', {
        tokenIds,
        delimiters,
        threshold: 0.5,
        seeds: 'importance',
        windowImportance: good,
      }),
    ).toThrow(/threshold: a fixed τ needs seeds 'gsc'/);
    expect(() =>
      compress(cache, 'semanticache', {
        tokenIds,
        delimiters,
        budget: { ratio: 0.5 },
        joinThreshold: Number.NaN,
        windowImportance: good,
      }),
    ).toThrow(/joinThreshold/);
    for (const [knob, value] of [
      ['nearbyThreshold', -2],
      ['joinRadius', 1.5],
      ['headBudgets', 'some'],
      ['coreBias', 'log'],
    ] as const) {
      expect(() =>
        compress(cache, 'semanticache', {
          tokenIds,
          delimiters,
          budget: { ratio: 0.5 },
          windowImportance: good,
          [knob]: value,
        } as never),
      ).toThrow(new RegExp(knob));
    }
    expect(() => needsCompression(cache, { maxEntries: 0 })).toThrow(RangeError);
    expect(() => triggerBudget({ maxEntries: 10, targetEntries: 11 })).toThrow(/targetEntries/);
    expect(copyHeads(cache)).toEqual(before);
  });
});
