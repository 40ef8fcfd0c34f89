// The integer screening in the SIMD module must never change a decision: every result equals a plain float64 greedy pass
// with the same summation order, including pairs exactly at the threshold, tiny and huge rows, zero rows and d not a
// multiple of 8.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { kthSmallest } from './gsc.js';
import { gscCluster } from './index.js';

/** Dot product in four lanes (k mod 4), combined as (l0 + l1) + (l2 + l3), then the tail: the kernel's order. */
function dotRows(keys: Float32Array, a: number, b: number, d: number): number {
  const s = [0, 0, 0, 0];
  let k = 0;
  for (; k + 3 < d; k += 4) for (let l = 0; l < 4; l++) s[l] += keys[a * d + k + l] * keys[b * d + k + l];
  let sum = s[0] + s[1] + (s[2] + s[3]);
  for (; k < d; k++) sum += keys[a * d + k] * keys[b * d + k];
  return sum;
}

function similarity(keys: Float32Array, a: number, b: number, d: number): number {
  const na = dotRows(keys, a, a, d);
  const nb = dotRows(keys, b, b, d);
  if (na === 0 || nb === 0) return na === nb ? 1 : 0;
  const dot = dotRows(keys, a, b, d);
  return (dot * Math.abs(dot)) / (na * nb);
}

/**
 * Greedy seed clustering in position order, one chunk, in plain float64; with `target`, then the members with the
 * smallest keys (ties in index order) become singletons until there are `target` clusters.
 */
function oracle(keys: Float32Array, n: number, d: number, tauKey: number, target = 0): Int32Array {
  const owner = new Int32Array(n).fill(-1);
  const key = new Float64Array(n);
  let count = 0;
  for (let s = 0; s < n; s++) {
    if (owner[s] >= 0) continue;
    owner[s] = s;
    count++;
    for (let j = s + 1; j < n; j++) {
      if (owner[j] >= 0) continue;
      key[j] = similarity(keys, s, j, d);
      if (key[j] >= tauKey) owner[j] = s;
    }
  }
  const members = [...owner.keys()].filter((i) => owner[i] !== i);
  members.sort((a, b) => key[a] - key[b] || a - b);
  for (const i of members.slice(0, Math.max(0, target - count))) owner[i] = i;
  const ids = new Int32Array(n);
  let next = 0;
  for (let i = 0; i < n; i++) if (owner[i] === i) ids[i] = next++;
  return Int32Array.from(owner, (o) => ids[o]);
}

/** Rows near a few directions (many pairs close to any τ), at scales from subnormal to huge, some zero, some copies. */
const caseArb = fc
  .record({
    n: fc.integer({ min: 2, max: 48 }),
    d: fc.integer({ min: 1, max: 80 }),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
    noise: fc.constantFrom(1e-7, 1e-5, 1e-3, 0.1),
    tauPair: fc.nat(),
  })
  .map(({ n, d, seed, noise, tauPair }) => {
    let s = seed;
    const random = () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s / 2 ** 32 - 0.5;
    };
    const directions = Array.from({ length: 3 }, () => Float64Array.from({ length: d }, random));
    const scales = [1, 1, 1, 1e-30, 1e30, 1e-42, 0];
    const keys = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const dir = directions[Math.floor((random() + 0.5) * 3) % 3];
      const scale = scales[Math.floor((random() + 0.5) * scales.length) % scales.length];
      for (let k = 0; k < d; k++) keys[i * d + k] = (dir[k] + noise * random()) * scale;
      if (i > 0 && random() > 0.4) keys.copyWithin(i * d, (i - 1) * d, i * d);
    }
    // τ·|τ| equal to the exact key of one pair, so that ties at the threshold occur
    const a = tauPair % n;
    const b = (a + 1 + (tauPair % (n - 1))) % n;
    const key = similarity(keys, a, b, d);
    return { n, d, keys, key };
  });

describe('screened comparisons', () => {
  it('decide exactly like plain float64, with the threshold on a pair', () => {
    fc.assert(
      fc.property(caseArb, ({ n, d, keys, key }) => {
        const tau = key >= 0 ? Math.sqrt(key) : -Math.sqrt(-key);
        const tauKey = tau * Math.abs(tau);
        const got = gscCluster(keys, n, d, Uint32Array.of(0, n), { threshold: tau });
        expect(Array.from(got.assignment)).toEqual(Array.from(oracle(keys, n, d, tauKey)));
      }),
      { numRuns: 400 },
    );
  });

  it('decide and split exactly like plain float64 in target mode, for every reachable target', () => {
    fc.assert(
      fc.property(caseArb, fc.nat(), ({ n, d, keys }, pick) => {
        const target = 1 + (pick % n);
        const got = gscCluster(keys, n, d, Uint32Array.of(0, n), { targetClusters: target });
        expect(got.numClusters).toBe(target);
        const key = got.threshold <= -1 ? Number.NEGATIVE_INFINITY : got.threshold * Math.abs(got.threshold);
        expect(Array.from(got.assignment)).toEqual(Array.from(oracle(keys, n, d, key, target)));
      }),
      { numRuns: 200 },
    );
  });
  it('split the weakest members by exact keys when estimates cannot tell them apart', () => {
    // one search step leaves the count far below the target, so the cut falls among screened members whose keys
    // lie closer together than the screening margin
    for (let seed = 1; seed <= 20; seed++) {
      let x = seed;
      const random = () => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return x / 2 ** 32 - 0.5;
      };
      const n = 64;
      const d = 64;
      const direction = Float64Array.from({ length: d }, random);
      const keys = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        const spread = i === 0 ? 0 : 0.05 + 0.1 * (random() + 0.5);
        for (let k = 0; k < d; k++) keys[i * d + k] = direction[k] + spread * random();
      }
      for (const target of [8, 20, 40, 60]) {
        const got = gscCluster(keys, n, d, Uint32Array.of(0, n), { targetClusters: target, maxSearchSteps: 1 });
        expect(got.splitMembers).toBeGreaterThan(0);
        const key = got.threshold <= -1 ? Number.NEGATIVE_INFINITY : got.threshold * Math.abs(got.threshold);
        expect(Array.from(got.assignment)).toEqual(Array.from(oracle(keys, n, d, key, target)));
      }
    }
  });
});

describe('kthSmallest', () => {
  it('equals sorting, with duplicates', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 60 }), fc.nat(), (a, pick) => {
        const k = pick % a.length;
        const sorted = Float64Array.from(a).sort();
        expect(kthSmallest(Float64Array.from(a), k)).toBe(sorted[k]);
      }),
    );
  });
});

describe('working memory', () => {
  it('runs an input larger than the memory kept between calls, then small calls again', () => {
    // 60000 tokens in chunks of 256: the estimate matrices alone take ~61 MB, past the 64 MiB kept between calls
    const n = 60_000;
    const d = 64;
    let x = 7;
    const keys = Float32Array.from({ length: n * d }, () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 2 ** 32 - 0.5;
    });
    const offsets = Uint32Array.from({ length: Math.ceil(n / 256) + 1 }, (_, c) => Math.min(n, c * 256));
    const big = gscCluster(keys, n, d, offsets, { targetClusters: n / 2 });
    expect(big.numClusters).toBe(n / 2);
    for (let i = 1; i < n; i++) {
      // clusters never cross chunks: an id seen in an earlier chunk never reappears
      if (i % 256 === 0) expect(big.assignment[i]).toBeGreaterThan(big.assignment[i - 1]);
    }
    const small = keys.subarray(0, 48 * d);
    const first = gscCluster(small, 48, d, Uint32Array.of(0, 48), { targetClusters: 20 });
    const again = gscCluster(small, 48, d, Uint32Array.of(0, 48), { targetClusters: 20 });
    expect(Array.from(again.assignment)).toEqual(Array.from(first.assignment));
    expect(Array.from(first.assignment)).toEqual(
      Array.from(oracle(small, 48, d, first.threshold * Math.abs(first.threshold), 20)),
    );
  });
});
