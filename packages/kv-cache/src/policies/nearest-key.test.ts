import { describe, expect, it } from 'vitest';
import { gaussian, rng } from '../test-support.js';
import { nearestTargets } from './nearest-key.js';
import { nearestTargetsSimd } from './nearest-key-simd.js';

function randomRows(count: number, d: number, seed: number): Float32Array {
  const random = rng(seed);
  return Float32Array.from({ length: count * d }, () => gaussian(random));
}

/** The definition: float64 sum of the products in column order, first maximum wins. */
function bruteForce(queries: Float32Array, n: number, targets: Float32Array, k: number, d: number): number[] {
  return Array.from({ length: n }, (_, q) => {
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let t = 0; t < k; t++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += queries[q * d + j] * targets[t * d + j];
      if (s > bestScore) {
        bestScore = s;
        best = t;
      }
    }
    return best;
  });
}

// query and target counts around the 4-row scalar blocks and the 2 × 6 SIMD blocks, at assorted widths
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 3],
  [4, 4, 4],
  [7, 9, 13],
  [8, 8, 16],
  [13, 17, 64],
  [33, 63, 7],
  [6, 12, 8],
  [129, 65, 64],
];

describe('nearestTargets', () => {
  it.each(SHAPES)('matches a brute-force search for %i queries × %i targets × %i dims', (n, k, d) => {
    const queries = randomRows(n, d, n * 31 + k);
    const targets = randomRows(k, d, k * 17 + d);
    const out = new Int32Array(n);
    nearestTargets(queries, n, targets, k, d, out);
    expect(Array.from(out)).toEqual(bruteForce(queries, n, targets, k, d));
  });

  it('breaks ties towards the lowest target index', () => {
    const d = 5;
    const base = randomRows(3, d, 4);
    // targets 2, 6 and 9 are copies of the same row, which every query is closest to
    const targets = randomRows(11, d, 5).map((x) => x * 1e-3);
    for (const t of [2, 6, 9]) targets.set(base.subarray(0, d), t * d);
    const queries = new Float32Array(7 * d);
    for (let q = 0; q < 7; q++) queries.set(base.subarray(0, d), q * d);
    const out = new Int32Array(7);
    nearestTargets(queries, 7, targets, 11, d, out);
    expect(Array.from(out)).toEqual(new Array(7).fill(2));
  });

  it('gives −1 for every query when there are no targets', () => {
    const out = new Int32Array(5);
    nearestTargets(randomRows(5, 3, 1), 5, new Float32Array(0), 0, 3, out);
    expect(Array.from(out)).toEqual([-1, -1, -1, -1, -1]);
  });
});

describe('nearestTargetsSimd', () => {
  const simd = nearestTargetsSimd();

  it('is available on this runtime (Node 20 has WebAssembly SIMD)', () => {
    expect(simd).not.toBeNull();
  });

  it.each(SHAPES)('picks bitwise the same targets as the scalar search: %i × %i × %i', (n, k, d) => {
    const queries = randomRows(n, d, n + 101 * k);
    const targets = randomRows(k, d, k + 7 * d);
    const scalar = new Int32Array(n);
    const vector = new Int32Array(n);
    nearestTargets(queries, n, targets, k, d, scalar);
    expect(simd?.(queries, n, targets, k, d, vector)).toBe(true);
    expect(Array.from(vector)).toEqual(Array.from(scalar));
  });

  it('sums in the scalar order where rounding alone picks the winner', () => {
    const d = 16;
    const k = 40;
    const n = 24;
    const random = rng(11);
    const spread = () => (random() < 0.5 ? -1 : 1) * 2 ** Math.floor(random() * 60 - 30) * (1 + random());
    // every target is a column permutation of one row of widely spread magnitudes and every query row is one value
    // repeated, so the exact scores of a query all tie and only the float64 rounding of the sum tells them apart
    const row = Float32Array.from({ length: d }, spread);
    const targets = new Float32Array(k * d);
    for (let t = 0; t < k; t++) {
      const order = Array.from({ length: d }, (_, j) => j);
      for (let j = d - 1; j > 0; j--) {
        const swap = Math.floor(random() * (j + 1));
        [order[j], order[swap]] = [order[swap], order[j]];
      }
      for (let j = 0; j < d; j++) targets[t * d + j] = row[order[j]];
    }
    const queries = new Float32Array(n * d);
    for (let q = 0; q < n; q++) queries.fill(spread(), q * d, (q + 1) * d);
    const scalar = new Int32Array(n);
    const vector = new Int32Array(n);
    nearestTargets(queries, n, targets, k, d, scalar);
    expect(simd?.(queries, n, targets, k, d, vector)).toBe(true);
    expect(Array.from(vector)).toEqual(Array.from(scalar));
    // the data does tell summation orders apart: summed from the last column down, the winners differ
    const reversed = Array.from({ length: n }, (_, q) => {
      let best = 0;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (let t = 0; t < k; t++) {
        let s = 0;
        for (let j = d - 1; j >= 0; j--) s += queries[q * d + j] * targets[t * d + j];
        if (s > bestScore) {
          bestScore = s;
          best = t;
        }
      }
      return best;
    });
    expect(reversed).not.toEqual(Array.from(scalar));
  });

  it('agrees with the scalar search on ties, negative-only scores and reused buffers', () => {
    const d = 9;
    const targets = randomRows(21, d, 3).map(Math.abs);
    targets.set(targets.subarray(4 * d, 5 * d), 12 * d); // 12 duplicates 4
    targets.set(targets.subarray(4 * d, 5 * d), 19 * d); // and so does 19
    // targets are positive and queries 1..4 negative, so every score of theirs is negative: the padding must not win
    const queries = new Float32Array(5 * d);
    queries.set(targets.subarray(4 * d, 5 * d), 0);
    for (let q = 1; q < 5; q++) for (let j = 0; j < d; j++) queries[q * d + j] = -Math.abs(targets[j]) - q;
    const scalar = new Int32Array(5);
    const vector = new Int32Array(5).fill(99);
    nearestTargets(queries, 5, targets, 21, d, scalar);
    expect(simd?.(queries, 5, targets, 21, d, vector)).toBe(true);
    expect(Array.from(vector)).toEqual(Array.from(scalar));
    expect(vector[0]).toBe(4);
    // a second, smaller call on the same module memory gives its own answer, not leftovers of the first
    const small = new Int32Array(1);
    expect(simd?.(queries.subarray(d, 2 * d), 1, targets, 3, d, small)).toBe(true);
    const expected = new Int32Array(1);
    nearestTargets(queries.subarray(d, 2 * d), 1, targets, 3, d, expected);
    expect(small[0]).toBe(expected[0]);
  });
});
