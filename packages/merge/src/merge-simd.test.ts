import { rng } from '@semanticache/testing';
// mergeClusters (WebAssembly SIMD module) against the plain JavaScript statement in reference.test-support.ts, bit for bit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Cores, type MergeInput, mergeClusters } from './index.js';
import { referenceMerge } from './reference.test-support.js';

const FLOAT32_MAX = 3.4028234663852886e38;
/** Zeros of both signs, subnormals, the extremes of float32. */
const SPECIAL = [0, -0, 1, -1, 2 ** -149, -(2 ** -149), 2 ** -126, FLOAT32_MAX, -FLOAT32_MAX, 1e-30, 65504];

/** Finite float32 of magnitudes 2^-20 .. 2^20, with some SPECIAL values mixed in. */
function floats(random: () => number, length: number): Float32Array {
  return Float32Array.from({ length }, () =>
    random() < 0.05
      ? SPECIAL[Math.floor(random() * SPECIAL.length)]
      : (random() - 0.5) * 2 ** Math.floor(random() * 40 - 20),
  );
}

interface Shape {
  n: number;
  d: number;
  seed: number;
  /** Entries not drawn as singletons fall into this many groups. */
  groups: number;
  singletonShare: number;
  /** Renumber the clusters in random order (else ids follow each cluster's first member). */
  shuffleIds: boolean;
  sizes: 'none' | 'integer' | 'fraction';
  positions: 'none' | 'float64' | 'float32' | 'int32' | 'uint32';
  /** 'sparse': float32 with most weights 0, so that many clusters' weights sum to 0. */
  weights: 'none' | 'float32' | 'float64' | 'sparse';
  positionMode: 'mean' | 'first' | undefined;
}

function build(shape: Shape): MergeInput {
  const { n, d } = shape;
  const random = rng(shape.seed);
  const labels = new Map<number, number>();
  let next = 0;
  const assignment = Int32Array.from({ length: n }, () => {
    if (random() < shape.singletonShare) return next++;
    const group = -1 - Math.floor(random() * shape.groups);
    if (!labels.has(group)) labels.set(group, next++);
    return labels.get(group)!;
  });
  const numClusters = next;
  if (shape.shuffleIds) {
    const order = Int32Array.from({ length: numClusters }, (_, c) => c);
    for (let c = numClusters - 1; c > 0; c--) {
      const r = Math.floor(random() * (c + 1));
      [order[c], order[r]] = [order[r], order[c]];
    }
    for (let i = 0; i < n; i++) assignment[i] = order[assignment[i]];
  }
  const input: MergeInput = {
    keys: floats(random, n * d),
    values: floats(random, n * d),
    n,
    d,
    assignment,
    numClusters,
    positionMode: shape.positionMode,
  };
  if (shape.sizes === 'integer') input.sizes = Float32Array.from({ length: n }, () => 1 + Math.floor(random() * 50));
  if (shape.sizes === 'fraction') input.sizes = Float32Array.from({ length: n }, () => 1e-3 + random() * 10);
  const positionValues = Array.from({ length: n }, (_, i) => i * 3 + Math.floor(random() * 5) + random() * 0.75);
  if (shape.positions === 'float64') input.positions = Float64Array.from(positionValues);
  if (shape.positions === 'float32') input.positions = Float32Array.from(positionValues);
  if (shape.positions === 'int32') input.positions = Int32Array.from(positionValues);
  if (shape.positions === 'uint32') input.positions = Uint32Array.from(positionValues);
  if (shape.weights === 'float32') input.weights = Float32Array.from({ length: n }, () => random() * 4);
  if (shape.weights === 'float64') input.weights = Float64Array.from({ length: n }, () => random() * 1e6);
  if (shape.weights === 'sparse')
    input.weights = Float32Array.from({ length: n }, () => (random() < 0.7 ? 0 : random()));
  return input;
}

/** Index of the first element whose bits differ, or -1. */
function firstDifference(a: ArrayBufferView, b: ArrayBufferView): number {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  const width = (a as Float32Array).BYTES_PER_ELEMENT;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return Math.floor(i / width);
  return -1;
}

function expectSameBits(got: Cores, want: Cores): void {
  for (const name of ['keys', 'values', 'sizes', 'positions', 'weights'] as const) {
    expect(got[name].constructor, name).toBe(want[name].constructor);
    expect(firstDifference(got[name], want[name]), name).toBe(-1);
  }
}

const shapeArb = (maxN: number, ds: number[]): fc.Arbitrary<Shape> =>
  fc.record({
    n: fc.integer({ min: 0, max: maxN }),
    d: fc.constantFrom(...ds),
    seed: fc.integer(),
    groups: fc.integer({ min: 1, max: 40 }),
    singletonShare: fc.constantFrom(0, 0.2, 0.5, 0.9, 1),
    shuffleIds: fc.boolean(),
    sizes: fc.constantFrom('none', 'integer', 'fraction'),
    positions: fc.constantFrom('none', 'float64', 'float32', 'int32', 'uint32'),
    weights: fc.constantFrom('none', 'float32', 'float64', 'sparse'),
    positionMode: fc.constantFrom(undefined, 'mean', 'first'),
  });

const smallShape: Shape = {
  n: 40,
  d: 6,
  seed: 1,
  groups: 5,
  singletonShare: 0.3,
  shuffleIds: true,
  sizes: 'integer',
  positions: 'float64',
  weights: 'sparse',
  positionMode: 'mean',
};

describe('mergeClusters equals the reference bit for bit', () => {
  it('on random inputs (d = 1 .. 130, singletons, sizes, positions, weights, position modes)', () => {
    fc.assert(
      fc.property(shapeArb(150, [1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65, 130]), (shape) => {
        const input = build(shape);
        expectSameBits(mergeClusters(input), referenceMerge(input));
      }),
      { numRuns: 400 },
    );
  });

  it.each([1, 3, 7, 9, 63, 65, 130])('d = %i, every option', (d) => {
    for (const weights of ['none', 'float32', 'float64', 'sparse'] as const) {
      for (const positionMode of [undefined, 'first'] as const) {
        const input = build({
          n: 700,
          d,
          seed: d * 31 + weights.length,
          groups: 150,
          singletonShare: 0.3,
          shuffleIds: positionMode === 'first',
          sizes: 'fraction',
          positions: 'float64',
          weights,
          positionMode,
        });
        expectSameBits(mergeClusters(input), referenceMerge(input));
      }
    }
  });

  it('big clusters', () => {
    for (const [d, groups] of [
      [64, 3],
      [65, 1],
      [9, 7],
    ]) {
      const input = build({
        n: 5000,
        d,
        seed: 7 + d,
        groups,
        singletonShare: 0.01,
        shuffleIds: true,
        sizes: 'integer',
        positions: 'int32',
        weights: 'float64',
        positionMode: 'mean',
      });
      expectSameBits(mergeClusters(input), referenceMerge(input));
    }
  });

  it('all singletons (one block copy), in order and shuffled', () => {
    for (const shuffleIds of [false, true]) {
      const shape: Shape = {
        n: 1000,
        d: 64,
        seed: 3,
        groups: 1,
        singletonShare: 1,
        shuffleIds,
        sizes: 'integer',
        positions: 'float32',
        weights: 'float32',
        positionMode: 'mean',
      };
      const input = build(shape);
      const cores = mergeClusters(input);
      expectSameBits(cores, referenceMerge(input));
      if (!shuffleIds) expect(firstDifference(cores.keys, input.keys)).toBe(-1);
    }
  });

  it('keeps the sign of a zero mean, in every part of a row', () => {
    const d = 11;
    const keys = new Float32Array(3 * d).fill(-0);
    const values = Float32Array.from({ length: 3 * d }, (_, i) => (i % 2 === 0 ? -0 : 0));
    const input = { keys, values, n: 3, d, assignment: Int32Array.of(0, 0, 0), numClusters: 1 };
    const cores = mergeClusters(input);
    expectSameBits(cores, referenceMerge(input));
    expect(cores.keys.every((x) => Object.is(x, -0))).toBe(true);
  });

  it('n = 0', () => {
    const input = build({
      n: 0,
      d: 5,
      seed: 1,
      groups: 1,
      singletonShare: 0,
      shuffleIds: false,
      sizes: 'none',
      positions: 'none',
      weights: 'none',
      positionMode: undefined,
    });
    const cores = mergeClusters(input);
    expectSameBits(cores, referenceMerge(input));
    expect(cores.keys.length).toBe(0);
  });

  it('returns arrays of its own, across calls that grow the module memory and back', () => {
    const shapes: [number, number][] = [
      [50, 8],
      [20_000, 100],
      [30, 3],
    ];
    const results = shapes.map(([n, d], s) => {
      const input = build({
        n,
        d,
        seed: s,
        groups: n >> 2,
        singletonShare: 0.4,
        shuffleIds: false,
        sizes: 'integer',
        positions: 'none',
        weights: 'none',
        positionMode: undefined,
      });
      const cores = mergeClusters(input);
      expectSameBits(cores, referenceMerge(input));
      return { input, cores, copy: Float32Array.from(cores.keys) };
    });
    for (const { input, cores, copy } of results) {
      expect(cores.keys.buffer.byteLength).toBe(input.numClusters * input.d * 4);
      expect(cores.values.buffer).not.toBe(cores.keys.buffer);
      expect(firstDifference(cores.keys, copy)).toBe(-1);
    }
  });

  it('an input larger than the memory kept between calls', () => {
    // 128 copies of one input side by side, each with clusters of its own, so each copy's cores are that input's
    const d = 128;
    const copies = 128;
    const tile = build({ ...smallShape, n: 1152, d, groups: 300, seed: 5 });
    const { n, numClusters: k } = tile;
    const input: MergeInput = {
      keys: new Float32Array(copies * n * d),
      values: new Float32Array(copies * n * d),
      sizes: new Float32Array(copies * n),
      positions: new Float64Array(copies * n),
      weights: new Float32Array(copies * n),
      n: copies * n,
      d,
      assignment: new Int32Array(copies * n),
      numClusters: copies * k,
      positionMode: 'mean',
    };
    for (let r = 0; r < copies; r++) {
      input.keys.set(tile.keys, r * n * d);
      input.values.set(tile.values, r * n * d);
      input.sizes!.set(tile.sizes!, r * n);
      input.positions!.set(tile.positions!, r * n);
      input.weights!.set(tile.weights!, r * n);
      input.assignment.set(
        tile.assignment.map((c) => c + r * k),
        r * n,
      );
    }
    // the rows alone take 72 MiB of the module's memory
    expect(input.keys.byteLength).toBe(72 * 2 ** 20);
    const cores = mergeClusters(input);
    const want = referenceMerge(tile);
    for (let r = 0; r < copies; r++) {
      for (const name of ['keys', 'values', 'sizes', 'positions', 'weights'] as const) {
        const width = name === 'keys' || name === 'values' ? d : 1;
        expect(firstDifference(cores[name].subarray(r * k * width, (r + 1) * k * width), want[name]), name).toBe(-1);
      }
    }
    const small = build({ ...smallShape, seed: 9 });
    expectSameBits(mergeClusters(small), referenceMerge(small));
  });
});

describe('mergeClusters non-finite means', () => {
  it('names the first cluster (in id order) with a non-finite row; keys before values within it', () => {
    const d = 2;
    const keys = new Float32Array(6 * d);
    const values = new Float32Array(6 * d);
    // cluster 0 = rows 2, 5; cluster 1 = row 0; cluster 2 = rows 1, 3, 4
    const assignment = Int32Array.of(1, 2, 0, 2, 2, 0);
    const call = () => mergeClusters({ keys, values, n: 6, d, assignment, numClusters: 3 });
    keys[0] = Number.NaN; // cluster 1
    values[5 * d + 1] = Number.POSITIVE_INFINITY; // cluster 0
    expect(call).toThrow('mergeClusters: values row 5 is not finite');
    keys[5 * d] = Number.NEGATIVE_INFINITY; // cluster 0, keys
    expect(call).toThrow('mergeClusters: keys row 5 is not finite');
    keys[2 * d + 1] = Number.NaN; // cluster 0's first member
    expect(call).toThrow('mergeClusters: keys row 2 is not finite');
  });

  it('finds NaN and ±Inf in members of weight 0', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const keys = Float32Array.of(1, 2, 3, 4, 5, 6);
      keys[4] = bad;
      expect(() =>
        mergeClusters({
          keys,
          values: new Float32Array(6),
          n: 3,
          d: 2,
          assignment: Int32Array.of(0, 0, 0),
          numClusters: 1,
          weights: Float32Array.of(1, 1, 0),
        }),
      ).toThrow('mergeClusters: keys row 2 is not finite');
    }
  });

  it('in the 8-wide, 2-wide and last dimensions of a row', () => {
    for (const d of [8, 11]) {
      for (let j = 0; j < d; j++) {
        const values = new Float32Array(3 * d).fill(0.5);
        values[2 * d + j] = Number.NaN;
        expect(() =>
          mergeClusters({
            keys: new Float32Array(3 * d),
            values,
            n: 3,
            d,
            assignment: Int32Array.of(0, 1, 1),
            numClusters: 2,
          }),
        ).toThrow('mergeClusters: values row 2 is not finite');
      }
    }
  });

  it('reports weights whose weighted mean overflows', () => {
    const base = {
      values: new Float32Array(4),
      n: 4,
      d: 1,
      assignment: Int32Array.of(0, 1, 1, 2),
      numClusters: 3,
    };
    // w·x overflows float64
    expect(() =>
      mergeClusters({ ...base, keys: Float32Array.of(1, 3e38, 3e38, 1), weights: Float64Array.of(1, 1e300, 1e300, 1) }),
    ).toThrow('mergeClusters: weights too large, the weighted mean of cluster 1 overflows');
    // the weights' sum overflows (the mean would come out 0)
    expect(() =>
      mergeClusters({
        ...base,
        keys: Float32Array.of(1, 0.5, 0.5, 1),
        weights: Float64Array.of(1, 1.5e308, 1.5e308, 1),
      }),
    ).toThrow('mergeClusters: weights too large, the weighted mean of cluster 1 overflows');
    // 1 / (sum of the weights) overflows
    expect(() =>
      mergeClusters({ ...base, keys: Float32Array.of(1, 0.5, 0.5, 1), weights: Float64Array.of(1, 5e-324, 0, 1) }),
    ).toThrow('mergeClusters: weights too small, the weights of cluster 1 sum to 5e-324, whose reciprocal overflows');
    // a single member is copied, whatever its weight
    const cores = mergeClusters({
      ...base,
      keys: Float32Array.of(3e38, 1, 1, -3e38),
      weights: Float64Array.of(1e300, 1, 1, 5e-324),
    });
    expect(Array.from(cores.keys)).toEqual([Math.fround(3e38), 1, Math.fround(-3e38)]);
  });
});
