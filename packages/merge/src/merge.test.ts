import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Cores, logSizes, type MergeInput, mergeClusters } from './index.js';

interface Tokens {
  n: number;
  d: number;
  keys: Float32Array;
  values: Float32Array;
  sizes: Float32Array;
  positions: Float64Array;
  weights: Float32Array;
}

const floats = (length: number) =>
  fc
    .array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: length, maxLength: length })
    .map((a) => Float32Array.from(a));

const tokensArb = (maxN = 30): fc.Arbitrary<Tokens> =>
  fc.record({ n: fc.integer({ min: 1, max: maxN }), d: fc.integer({ min: 1, max: 6 }) }).chain(({ n, d }) =>
    fc.record({
      n: fc.constant(n),
      d: fc.constant(d),
      keys: floats(n * d),
      values: floats(n * d),
      sizes: fc
        .array(fc.integer({ min: 1, max: 1000 }), { minLength: n, maxLength: n })
        .map((a) => Float32Array.from(a)),
      positions: fc
        .array(fc.integer({ min: 0, max: 100000 }), { minLength: n, maxLength: n })
        .map((a) => Float64Array.from(a)),
      weights: fc
        .array(fc.float({ min: Math.fround(0.01), max: 10, noNaN: true }), { minLength: n, maxLength: n })
        .map((a) => Float32Array.from(a)),
    }),
  );

/** Random labels for `count` items, compacted to dense ids 0..k−1 (so no cluster is empty). */
const partitionArb = (count: number) =>
  fc.array(fc.integer({ min: 0, max: count - 1 }), { minLength: count, maxLength: count }).map((labels) => {
    const ids = new Map<number, number>();
    const assignment = Int32Array.from(labels, (l) => {
      if (!ids.has(l)) ids.set(l, ids.size);
      return ids.get(l)!;
    });
    return { assignment, numClusters: ids.size };
  });

/** Plain float64 reference of the weighted means. */
function reference(t: Tokens, assignment: Int32Array, k: number, useWeights: boolean) {
  const keys = new Float64Array(k * t.d);
  const values = new Float64Array(k * t.d);
  const w = new Float64Array(k);
  const sizes = new Float64Array(k);
  const positions = new Float64Array(k);
  for (let i = 0; i < t.n; i++) {
    const c = assignment[i];
    const wi = useWeights ? t.weights[i] : t.sizes[i];
    w[c] += wi;
    sizes[c] += t.sizes[i];
    positions[c] += t.sizes[i] * t.positions[i];
    for (let j = 0; j < t.d; j++) {
      keys[c * t.d + j] += wi * t.keys[i * t.d + j];
      values[c * t.d + j] += wi * t.values[i * t.d + j];
    }
  }
  for (let c = 0; c < k; c++) {
    positions[c] /= sizes[c];
    for (let j = 0; j < t.d; j++) {
      keys[c * t.d + j] /= w[c];
      values[c * t.d + j] /= w[c];
    }
  }
  return { keys, values, sizes, positions };
}

const expectClose = (got: ArrayLike<number>, want: ArrayLike<number>, scale: number) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
};

/** Proportional attention of one query: logit = q·k·scale + bias (ln size). */
function attend(q: Float32Array, keys: Float32Array, values: Float32Array, bias: Float32Array | null, d: number) {
  const m = keys.length / d;
  const logits = Array.from({ length: m }, (_, j) => {
    let dot = 0;
    for (let k = 0; k < d; k++) dot += q[k] * keys[j * d + k];
    return dot / Math.sqrt(d) + (bias === null ? 0 : bias[j]);
  });
  const max = Math.max(...logits);
  const out = new Float64Array(d);
  let total = 0;
  logits.forEach((l, j) => {
    const w = Math.exp(l - max);
    total += w;
    for (let k = 0; k < d; k++) out[k] += w * values[j * d + k];
  });
  return out.map((v) => v / total);
}

describe('mergeClusters', () => {
  it('gives the size-weighted (or weight-weighted) means, added sizes and mean positions', () => {
    fc.assert(
      fc.property(
        tokensArb().chain((t) => fc.tuple(fc.constant(t), partitionArb(t.n), fc.boolean())),
        ([t, { assignment, numClusters }, useWeights]) => {
          const cores = mergeClusters({
            ...t,
            assignment,
            numClusters,
            weights: useWeights ? t.weights : undefined,
          });
          const want = reference(t, assignment, numClusters, useWeights);
          expectClose(cores.keys, want.keys, 100);
          expectClose(cores.values, want.values, 100);
          expect(Array.from(cores.sizes)).toEqual(Array.from(want.sizes));
          expectClose(cores.positions, want.positions, 1);
        },
      ),
    );
  });

  it('merging cores again equals merging all their tokens at once (random nested partitions)', () => {
    const arb = tokensArb().chain((t) =>
      partitionArb(t.n).chain((fine) =>
        fc.tuple(fc.constant(t), fc.constant(fine), partitionArb(fine.numClusters), fc.boolean()),
      ),
    );
    fc.assert(
      fc.property(arb, ([t, fine, coarse, useWeights]) => {
        const weights = useWeights ? t.weights : undefined;
        const cores = mergeClusters({ ...t, weights, ...fine });
        const twice = mergeClusters({
          keys: cores.keys,
          values: cores.values,
          sizes: cores.sizes,
          positions: cores.positions,
          weights: useWeights ? cores.weights : undefined,
          n: fine.numClusters,
          d: t.d,
          ...coarse,
        });
        const composed = Int32Array.from(fine.assignment, (c) => coarse.assignment[c]);
        const once = mergeClusters({ ...t, weights, assignment: composed, numClusters: coarse.numClusters });
        expectClose(twice.keys, once.keys, 100);
        expectClose(twice.values, once.values, 100);
        expect(Array.from(twice.sizes)).toEqual(Array.from(once.sizes));
        expectClose(twice.positions, once.positions, 1);
        expectClose(twice.weights, once.weights, 1);
      }),
    );
  });

  it("positionMode 'first' keeps the lowest-index member's position, also when merging again in order", () => {
    fc.assert(
      fc.property(tokensArb(), fc.integer({ min: 1, max: 5 }), (t, span) => {
        // contiguous clusters of `span` tokens, numbered in order, then pairs of cores
        const fine = Int32Array.from({ length: t.n }, (_, i) => Math.floor(i / span));
        const k1 = fine[t.n - 1] + 1;
        const cores = mergeClusters({ ...t, assignment: fine, numClusters: k1, positionMode: 'first' });
        for (let c = 0; c < k1; c++) expect(cores.positions[c]).toBe(t.positions[c * span]);
        const coarse = Int32Array.from({ length: k1 }, (_, c) => c >> 1);
        const k2 = coarse[k1 - 1] + 1;
        const twice = mergeClusters({
          ...cores,
          n: k1,
          d: t.d,
          assignment: coarse,
          numClusters: k2,
          positionMode: 'first',
        });
        for (let c = 0; c < k2; c++) expect(twice.positions[c]).toBe(t.positions[c * 2 * span]);
      }),
    );
  });

  it('merges identical keys and values losslessly, for any sizes and weights', () => {
    fc.assert(
      fc.property(tokensArb(1), fc.integer({ min: 1, max: 40 }), fc.boolean(), (t, copies, useWeights) => {
        const d = t.d;
        const keys = new Float32Array(copies * d);
        const values = new Float32Array(copies * d);
        for (let c = 0; c < copies; c++) {
          keys.set(t.keys, c * d);
          values.set(t.values, c * d);
        }
        const sizes = Float32Array.from({ length: copies }, (_, i) => 1 + ((i * 7) % 5) / 4);
        const weights = Float32Array.from({ length: copies }, (_, i) => Math.fround(0.1 + ((i * 3) % 7) / 3));
        const cores = mergeClusters({
          keys,
          values,
          sizes,
          n: copies,
          d,
          assignment: new Int32Array(copies),
          numClusters: 1,
          weights: useWeights ? weights : undefined,
        });
        expect(Array.from(cores.keys)).toEqual(Array.from(t.keys));
        expect(Array.from(cores.values)).toEqual(Array.from(t.values));
      }),
    );
  });

  it('cores of identical keys reproduce full attention exactly with the ln(size) bias, even with distinct values', () => {
    fc.assert(
      fc.property(tokensArb(12), fc.integer({ min: 1, max: 4 }), (t, copies) => {
        const d = t.d;
        // every key appears `copies` times (each copy with its own value); clusters are the groups of copies
        const n = t.n * copies;
        const keys = new Float32Array(n * d);
        const values = new Float32Array(n * d);
        const assignment = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const src = i % t.n;
          keys.set(t.keys.subarray(src * d, (src + 1) * d), i * d);
          values.set(t.values.subarray(((i * 5) % t.n) * d, (((i * 5) % t.n) + 1) * d), i * d);
          assignment[i] = src;
        }
        const cores = mergeClusters({ keys, values, n, d, assignment, numClusters: t.n });
        const q = Float32Array.from({ length: d }, (_, k) => Math.sin(k + 1) / 20);
        const full = attend(q, keys, values, null, d);
        const merged = attend(q, cores.keys, cores.values, logSizes(cores.sizes), d);
        for (let k = 0; k < d; k++) expect(merged[k]).toBeCloseTo(full[k], 3);
      }),
    );
  });

  it('falls back to size weighting for a cluster whose weights sum to 0', () => {
    const cores = mergeClusters({
      keys: Float32Array.of(1, 3, 10),
      values: Float32Array.of(2, 4, 20),
      sizes: Float32Array.of(1, 3, 1),
      n: 3,
      d: 1,
      assignment: Int32Array.of(0, 0, 1),
      numClusters: 2,
      weights: Float32Array.of(0, 0, 5),
    });
    expect(Array.from(cores.keys)).toEqual([2.5, 10]);
    expect(Array.from(cores.values)).toEqual([3.5, 20]);
    expect(Array.from(cores.weights)).toEqual([0, 5]);
    expect(Array.from(cores.sizes)).toEqual([4, 1]);
  });

  it('defaults: sizes 1, positions = index, mean positions', () => {
    const cores: Cores = mergeClusters({
      keys: Float32Array.of(1, 2, 3, 4, 5, 6),
      values: Float32Array.of(6, 5, 4, 3, 2, 1),
      n: 3,
      d: 2,
      assignment: Int32Array.of(1, 0, 1),
      numClusters: 2,
    });
    expect(Array.from(cores.keys)).toEqual([3, 4, 3, 4]);
    expect(Array.from(cores.values)).toEqual([4, 3, 4, 3]);
    expect(Array.from(cores.sizes)).toEqual([1, 2]);
    expect(Array.from(cores.positions)).toEqual([1, 1]);
    expect(Array.from(cores.weights)).toEqual([1, 2]);
  });

  it('accumulates in float64: a core of 100000 tokens has the exact mean', () => {
    const n = 100_000;
    const keys = Float32Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1e4 : Math.fround(1e-3)));
    const cores = mergeClusters({ keys, values: keys, n, d: 1, assignment: new Int32Array(n), numClusters: 1 });
    expect(cores.keys[0]).toBe(Math.fround((1e4 + Math.fround(1e-3)) / 2));
    expect(cores.sizes[0]).toBe(n);
  });

  it('names the non-finite row inside a run of singletons (block-copied path)', () => {
    const n = 9;
    const values = new Float32Array(n * 3);
    values[7 * 3 + 2] = Number.NaN;
    const assignment = Int32Array.from({ length: n }, (_, i) => i);
    const call = () => mergeClusters({ keys: new Float32Array(n * 3), values, n, d: 3, assignment, numClusters: n });
    expect(call).toThrow(RangeError);
    expect(call).toThrow(/values row 7/);
    const keys = new Float32Array(n * 3);
    keys[4 * 3] = Number.NEGATIVE_INFINITY;
    expect(() => mergeClusters({ keys, values: new Float32Array(n * 3), n, d: 3, assignment, numClusters: n })).toThrow(
      /keys row 4/,
    );
  });

  it('handles empty input', () => {
    const cores = mergeClusters({
      keys: new Float32Array(0),
      values: new Float32Array(0),
      n: 0,
      d: 8,
      assignment: new Int32Array(0),
      numClusters: 0,
    });
    expect(cores.keys.length).toBe(0);
    expect(cores.sizes.length).toBe(0);
  });
});

describe('logSizes', () => {
  it('returns ln(size), into `out` when given', () => {
    const sizes = Float32Array.of(1, 2, 1000);
    expect(Array.from(logSizes(sizes))).toEqual(Array.from(Float32Array.of(0, Math.log(2), Math.log(1000))));
    const out = new Float32Array(3);
    expect(logSizes(sizes, out)).toBe(out);
  });

  it.each([
    ['zero', Float32Array.of(1, 0), RangeError, /sizes\[1\]/],
    ['negative', Float32Array.of(-1), RangeError, /sizes\[0\]/],
    ['NaN', Float32Array.of(Number.NaN), RangeError, /sizes\[0\]/],
    ['Infinity', Float32Array.of(Number.POSITIVE_INFINITY), RangeError, /sizes\[0\]/],
    ['type', [1, 2] as unknown as Float32Array, TypeError, /sizes/],
  ])('rejects %s', (_name, sizes, type, message) => {
    expect(() => logSizes(sizes)).toThrow(type);
    expect(() => logSizes(sizes)).toThrow(message);
  });

  it('rejects an out of the wrong length', () => {
    expect(() => logSizes(Float32Array.of(1), new Float32Array(2))).toThrow(/out/);
  });
});

describe('mergeClusters input errors', () => {
  const base = (): MergeInput => ({
    keys: new Float32Array(6),
    values: new Float32Array(6),
    n: 3,
    d: 2,
    assignment: Int32Array.of(0, 1, 0),
    numClusters: 2,
  });
  const cases: [string, Partial<MergeInput> | null, ErrorConstructor, RegExp][] = [
    ['input', null, TypeError, /input/],
    ['n fraction', { n: 1.5 }, RangeError, /\bn\b/],
    ['d zero', { d: 0 }, RangeError, /\bd\b/],
    ['keys type', { keys: [0, 0, 0, 0, 0, 0] as unknown as Float32Array }, TypeError, /keys/],
    ['keys length', { keys: new Float32Array(5) }, RangeError, /keys\.length/],
    ['values length', { values: new Float32Array(8) }, RangeError, /values\.length/],
    ['assignment type', { assignment: [0, 1, 0] as unknown as Int32Array }, TypeError, /assignment/],
    ['assignment length', { assignment: Int32Array.of(0, 1) }, RangeError, /assignment\.length/],
    ['assignment above', { assignment: Int32Array.of(0, 2, 1) }, RangeError, /assignment\[1\]/],
    ['assignment negative', { assignment: Int32Array.of(0, -1, 1) }, RangeError, /assignment\[1\]/],
    ['empty cluster', { assignment: Int32Array.of(0, 0, 0) }, RangeError, /cluster 1 has no members/],
    ['numClusters > n', { numClusters: 4 }, RangeError, /numClusters/],
    ['numClusters 0', { numClusters: 0 }, RangeError, /numClusters/],
    ['sizes length', { sizes: new Float32Array(2).fill(1) }, RangeError, /sizes\.length/],
    ['sizes zero', { sizes: Float32Array.of(1, 0, 1) }, RangeError, /sizes\[1\]/],
    ['sizes NaN', { sizes: Float32Array.of(1, 1, Number.NaN) }, RangeError, /sizes\[2\]/],
    ['positions length', { positions: new Float64Array(4) }, RangeError, /positions\.length/],
    ['positions NaN', { positions: Float64Array.of(0, Number.NaN, 2) }, RangeError, /positions\[1\]/],
    ['weights negative', { weights: Float32Array.of(1, -1, 1) }, RangeError, /weights\[1\]/],
    ['weights length', { weights: new Float32Array(2) }, RangeError, /weights\.length/],
    ['positionMode', { positionMode: 'last' as 'first' }, TypeError, /positionMode/],
    ['NaN key', { keys: Float32Array.of(0, 0, 0, Number.NaN, 0, 0) }, RangeError, /keys row 1/],
    ['Inf value', { values: Float32Array.of(0, 0, 0, 0, Number.NEGATIVE_INFINITY, 0) }, RangeError, /values row 2/],
  ];
  it.each(cases)('%s', (_name, patch, type, message) => {
    const call = () => mergeClusters(patch === null ? (null as unknown as MergeInput) : { ...base(), ...patch });
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });
});
