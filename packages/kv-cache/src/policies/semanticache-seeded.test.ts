import { chunk } from '@semanticache/chunker';
import { describe, expect, it } from 'vitest';
import { compress } from '../compress.js';
import type { Importance } from '../plan.js';
import { KVCache } from '../store.js';
import { delimiters, PERIOD, randomImportance, syntheticCache } from '../test-support.js';

function sameHeads(a: KVCache, b: KVCache): void {
  for (let l = 0; l < a.numLayers; l++) {
    for (let h = 0; h < a.numKvHeads; h++) {
      const x = a.head(l, h);
      const y = b.head(l, h);
      expect(x.length).toBe(y.length);
      expect(Array.from(x.keys)).toEqual(Array.from(y.keys));
      expect(Array.from(x.values)).toEqual(Array.from(y.values));
      expect(Array.from(x.logSizes)).toEqual(Array.from(y.logSizes));
      expect(Array.from(x.positions)).toEqual(Array.from(y.positions));
      expect(Array.from(x.origins)).toEqual(Array.from(y.origins));
    }
  }
}

describe('semanticache (importance seeds)', () => {
  for (const dtype of ['float32', 'float16'] as const) {
    it(`with nothing allowed to join and no pooling ties, is SnapKV bit for bit (${dtype})`, () => {
      const a = syntheticCache({ tokens: 300, dtype, numKvHeads: 3 });
      const b = syntheticCache({ tokens: 300, dtype, numKvHeads: 3 });
      const windowImportance = randomImportance(a.cache, 4);
      const budget = { ratio: 0.7 };
      const seeded = compress(a.cache, 'semanticache', {
        tokenIds: a.tokenIds,
        delimiters,
        budget,
        windowImportance,
        preset: 'no-merge',
        pooling: 'none',
      });
      const snap = compress(b.cache, 'snapkv', { budget, windowImportance, pooling: 'none' });
      sameHeads(a.cache, b.cache);
      expect(seeded.remap).toEqual(snap.remap);
    });
  }

  it('builds each core from its seed key, the mass-weighted mean value and the members’ mass ratio', () => {
    // sink | a0 a1 a2 . | b0 b1 . | window: two sentences, two seeds (a1 and b1)
    const ids = Int32Array.from([1, 2, 3, 4, PERIOD, 5, 6, PERIOD, 7]);
    const n = ids.length;
    const d = 4;
    const keys = new Float32Array(n * d);
    const values = new Float32Array(n * d);
    for (let t = 0; t < n; t++) {
      for (let j = 0; j < d; j++) {
        // sentence a points along +x, sentence b along +y, with a little spread
        keys[t * d + j] = (t <= 4 ? j === 0 : j === 1) ? 1 : 0.1 * ((t + j) % 3);
        values[t * d + j] = t * 10 + j;
      }
    }
    const mass = Float32Array.from([9, 0.1, 0.5, 0.2, 0.2, 0.05, 0.4, 0.15, 9]);
    // the head above, compressed to sink + 2 cores + window with the given core bias
    const compressed = (coreBias?: 'mass' | 'size' | 'none') => {
      const fresh = new KVCache({ numLayers: 1, numKvHeads: 1, headDim: d, dtype: 'float32' });
      fresh.append(
        0,
        keys,
        values,
        Int32Array.from({ length: n }, (_, t) => t),
      );
      const result = compress(fresh, 'semanticache', {
        tokenIds: ids,
        delimiters,
        budget: { maxEntries: 4 },
        sinkTokens: 1,
        recentWindow: 1,
        pooling: 'none',
        coreBias,
        windowImportance: [[mass]],
      });
      return { cache: fresh, result };
    };
    const { cache, result } = compressed();
    const view = cache.head(0, 0);
    expect(view.length).toBe(4);
    expect(Array.from(view.origins)).toEqual([0, 2, 6, 8]);
    expect(Array.from(result.remap[0][0])).toEqual([0, 1, 1, 1, 1, 2, 2, 2, 3]);
    const core = (c: number, members: number[], seed: number) => {
      const m = members.reduce((s, t) => s + mass[t], 0);
      expect(Array.from(view.keys.subarray(c * d, (c + 1) * d))).toEqual(
        Array.from(keys.subarray(seed * d, seed * d + d)),
      );
      for (let j = 0; j < d; j++) {
        const mean = members.reduce((s, t) => s + mass[t] * values[t * d + j], 0) / m;
        expect(view.values[c * d + j]).toBeCloseTo(mean, 4);
      }
      expect(view.logSizes[c]).toBeCloseTo(Math.min(Math.log(m / mass[seed]), Math.log(members.length)), 5);
      expect(view.positions[c]).toBe(seed);
    };
    core(1, [1, 2, 3, 4], 2);
    core(2, [5, 6, 7], 6);
    // the other biases: ToMe's ln size, or none (values-only merging)
    for (const [coreBias, expected] of [
      ['size', [Math.log(4), Math.log(3)]],
      ['none', [0, 0]],
    ] as const) {
      const again = compressed(coreBias).cache;
      expect(again.head(0, 0).logSizes[1]).toBeCloseTo(expected[0], 6);
      expect(again.head(0, 0).logSizes[2]).toBeCloseTo(expected[1], 6);
    }
    // sinks and window are copied as they were
    expect(view.logSizes[0]).toBe(0);
    expect(view.logSizes[3]).toBe(0);
  });

  it('joins a member to a seed of its own chunk when it has one (cosine ≥ joinThreshold), else to a nearby seed (≥ nearbyThreshold)', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 400, noise: 1 });
    const before = Array.from({ length: 2 }, (_, l) =>
      Array.from({ length: 2 }, (_, h) => cache.readFloat32(l, h, 'keys').slice()),
    );
    const windowImportance = randomImportance(cache, 9);
    const result = compress(cache, 'semanticache', {
      tokenIds,
      delimiters,
      budget: { ratio: 0.75 },
      windowImportance,
      joinThreshold: 0.3,
      nearbyThreshold: 0.6,
    });
    const starts = chunk(tokenIds, delimiters);
    const chunkOf = (t: number) => {
      let c = 0;
      while (c + 1 < starts.length && starts[c + 1] <= t) c++;
      return c;
    };
    let joinedOwn = 0;
    let joinedOther = 0;
    let dropped = 0;
    for (let l = 0; l < 2; l++) {
      for (let h = 0; h < 2; h++) {
        const { origins } = cache.head(l, h);
        // chunks holding a seed (sinks and the recent window are not seeds)
        const seeded = new Set(
          Array.from(
            origins.filter((o) => o >= 4 && o < 400 - 32),
            chunkOf,
          ),
        );
        const keys = cache.readFloat32(l, h, 'keys');
        const remap = result.remap[l][h];
        for (let t = 0; t < remap.length; t++) {
          if (remap[t] < 0) {
            dropped++;
            continue;
          }
          const seed = origins[remap[t]];
          if (seed === t) continue;
          const own = seeded.has(chunkOf(t));
          if (own) {
            expect(chunkOf(seed)).toBe(chunkOf(t));
            joinedOwn++;
          } else joinedOther++;
          let dot = 0;
          let a = 0;
          let b = 0;
          for (let j = 0; j < 16; j++) {
            const x = before[l][h][t * 16 + j];
            const y = keys[remap[t] * 16 + j];
            dot += x * y;
            a += x * x;
            b += y * y;
          }
          expect(dot / Math.sqrt(a * b)).toBeGreaterThanOrEqual((own ? 0.3 : 0.6) - 1e-6);
        }
      }
    }
    expect(joinedOwn).toBeGreaterThan(50);
    expect(joinedOwn + joinedOther + dropped).toBeGreaterThan(600);
    expect(dropped).toBeGreaterThan(0);
  });

  it('joins a member only when its own window mass is at most memberMassCap times its seed’s', () => {
    const run = (memberMassCap: number) => {
      const { cache, tokenIds } = syntheticCache({ tokens: 400, noise: 1 });
      const windowImportance = randomImportance(cache, 9);
      const result = compress(cache, 'semanticache', {
        tokenIds,
        delimiters,
        budget: { ratio: 0.75 },
        windowImportance,
        memberMassCap,
      });
      let joined = 0;
      for (let l = 0; l < 2; l++) {
        for (let h = 0; h < 2; h++) {
          const { origins } = cache.head(l, h);
          const remap = result.remap[l][h];
          const mass = windowImportance[l][h];
          for (let t = 0; t < remap.length; t++) {
            if (remap[t] < 0 || origins[remap[t]] === t) continue;
            joined++;
            expect(mass[t]).toBeLessThanOrEqual(memberMassCap * mass[origins[remap[t]]]);
          }
        }
      }
      return joined;
    };
    const any = run(Number.POSITIVE_INFINITY);
    const capped = run(1);
    expect(capped).toBeGreaterThan(0);
    expect(capped).toBeLessThan(any);
    expect(run(0)).toBe(0);
  });

  it('adaptive head budgets keep each layer’s total and give the seats to the heads with the most mass', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 300, numKvHeads: 3 });
    const windowImportance = randomImportance(cache, 5);
    // head 2 of layer 0 carries far more mass than the others
    for (let i = 0; i < 300; i++) windowImportance[0][2][i] *= 100;
    compress(cache, 'semanticache', {
      tokenIds,
      delimiters,
      budget: { ratio: 0.75 },
      windowImportance,
      preset: 'adaptive-heads',
    });
    const even = Math.floor(300 * 0.25);
    const middle = even - 36;
    for (let l = 0; l < 2; l++) {
      const lengths = [0, 1, 2].map((h) => cache.length(l, h));
      expect(lengths.reduce((a, b) => a + b, 0)).toBe(3 * even);
      for (const n of lengths) expect(n).toBeGreaterThanOrEqual(36 + Math.ceil(0.2 * middle));
    }
    expect(cache.length(0, 2)).toBe(36 + 3 * middle - 2 * Math.ceil(0.2 * middle));
    // an entry cap is per head: every head meets it
    const capped = syntheticCache({ tokens: 300, numKvHeads: 3 });
    compress(capped.cache, 'semanticache', {
      tokenIds,
      delimiters,
      budget: { maxEntries: 80 },
      windowImportance: randomImportance(capped.cache, 5),
      preset: 'adaptive-heads',
    });
    for (let h = 0; h < 3; h++) expect(capped.cache.length(0, h)).toBe(80);
  });

  it('seeds a pooled peak at the peak itself, not at the earlier neighbours it ties with', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 100, numLayers: 1, numKvHeads: 1 });
    const mass = new Float32Array(100).fill(0.01);
    mass[50] = 5;
    compress(cache, 'semanticache', {
      tokenIds,
      delimiters,
      budget: { maxEntries: 4 + 32 + 1 },
      windowImportance: [[mass]],
      preset: 'no-merge',
    });
    expect(cache.head(0, 0).origins[4]).toBe(50);
  });

  it('members of a chunk without a seed join a nearby seed', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 400 });
    const windowImportance = randomImportance(cache, 9);
    const result = compress(cache, 'semanticache', {
      tokenIds,
      delimiters,
      budget: { ratio: 0.9 },
      windowImportance,
      joinThreshold: -1,
      nearbyThreshold: -1,
      memberMassCap: Number.POSITIVE_INFINITY,
    });
    // with τ = −1 and no mass cap every compressible entry lives on in some core; with no radius, seedless chunks
    // are dropped
    for (const heads of result.remap) for (const map of heads) expect(map.every((x) => x >= 0)).toBe(true);
    const alone = syntheticCache({ tokens: 400 });
    const dropped = compress(alone.cache, 'semanticache', {
      tokenIds: alone.tokenIds,
      delimiters,
      budget: { ratio: 0.9 },
      windowImportance,
      joinRadius: 0,
      joinThreshold: -1,
      nearbyThreshold: -1,
      memberMassCap: Number.POSITIVE_INFINITY,
    });
    expect(dropped.remap.flat().some((map) => map.some((x) => x < 0))).toBe(true);
  });

  it('compresses again during decode: core weights never exceed the tokens they stand for', () => {
    const { cache, tokenIds } = syntheticCache({ tokens: 600, dtype: 'float16', blockLength: 600 });
    // how many tokens each live entry stands for, carried through every remap
    let counts: Float64Array[][] = Array.from({ length: 2 }, (_, l) =>
      Array.from({ length: 2 }, (_, h) => new Float64Array(cache.length(l, h)).fill(1)),
    );
    let importance: Importance = randomImportance(cache, 1);
    for (const [i, budget] of [{ ratio: 0.5 }, { ratio: 0.5 }, { maxEntries: 60 }].entries()) {
      const result = compress(cache, 'semanticache', { tokenIds, delimiters, budget, windowImportance: importance });
      counts = counts.map((heads, l) =>
        heads.map((old, h) => {
          const next = new Float64Array(cache.length(l, h));
          result.remap[l][h].forEach((to, from) => {
            if (to >= 0) next[to] += old[from];
          });
          return next;
        }),
      );
      for (let l = 0; l < 2; l++) {
        for (let h = 0; h < 2; h++) {
          const { logSizes, length } = cache.head(l, h);
          for (let e = 0; e < length; e++) {
            expect(logSizes[e]).toBeGreaterThanOrEqual(0);
            expect(Math.exp(logSizes[e])).toBeLessThanOrEqual(counts[l][h][e] * (1 + 1e-5));
          }
        }
      }
      importance = randomImportance(cache, 2 + i);
    }
    expect(cache.length(0, 0)).toBe(60);
  });
});
