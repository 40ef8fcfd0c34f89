import { describe, expect, it } from 'vitest';
import {
  decode,
  decodeAsync,
  getThreads,
  prefill,
  prefillAsync,
  referenceAttention,
  setSimdLevel,
  setThreads,
  simdLevel,
} from './index.js';
import {
  randomArray,
  randomCache,
  relativeError,
  restoreKernelSettingsAfterAll,
  rng,
  SIMD_LEVELS,
} from './test-helpers.js';
import type { HeadCache } from './types.js';

const levels = SIMD_LEVELS;
const defaultThreads = getThreads();
restoreKernelSettingsAfterAll();

interface Shape {
  numHeads: number;
  numKvHeads: number;
  d: number;
  lengths: number[];
}

function shapes(random: () => number): Shape[] {
  const list: Shape[] = [];
  // Group sizes 3 and 7 (Qwen2.5-0.5B) leave partial blocks of queries; d = 40 a masked tail after whole chunks.
  for (const d of [32, 40, 64, 80, 128]) {
    for (const ratio of [1, 2, 3, 4, 7, 8]) {
      const numKvHeads = 1 + Math.floor(random() * 3);
      const lengths = Array.from({ length: numKvHeads }, () => 1 + Math.floor(random() * 700));
      list.push({ numHeads: numKvHeads * ratio, numKvHeads, d, lengths });
    }
  }
  list.push({ numHeads: 2, numKvHeads: 2, d: 64, lengths: [1, 1] });
  list.push({ numHeads: 4, numKvHeads: 2, d: 13, lengths: [1, 67] });
  list.push({ numHeads: 6, numKvHeads: 3, d: 64, lengths: [2049, 1, 4095] });
  return list;
}

describe.each(levels)('%s kernels', (level) => {
  it('runs the requested path', () => {
    expect(setSimdLevel(level)).toBe(level);
    expect(simdLevel()).toBe(level);
  });

  for (const dtype of ['float32', 'float16'] as const) {
    it(`decode matches the reference on random shapes (${dtype} cache)`, () => {
      setSimdLevel(level);
      const random = rng(dtype === 'float32' ? 11 : 12);
      for (const shape of shapes(random)) {
        const cache = randomCache(random, shape.lengths, shape.d, dtype);
        const q = randomArray(random, shape.numHeads * shape.d, 2);
        const args = { q, numHeads: shape.numHeads, headDim: shape.d };
        const mass = cache.heads.map((h) => new Float32Array(h.length));
        const out = decode({ ...args, heads: cache.heads, attentionMass: mass });
        const expectedMass = cache.heads.map((h) => new Float32Array(h.length));
        const expected = referenceAttention({ ...args, heads: cache.rounded, attentionMass: expectedMass });
        expect(relativeError(out, expected)).toBeLessThanOrEqual(1e-5);
        for (let g = 0; g < mass.length; g++) expect(relativeError(mass[g], expectedMass[g])).toBeLessThanOrEqual(1e-5);
        if (dtype === 'float16') {
          // Against the values before fp16 rounding: the storage error itself.
          const unrounded = referenceAttention({ ...args, heads: cache.raw });
          expect(relativeError(out, unrounded)).toBeLessThanOrEqual(2e-3);
        }
      }
    });

    it(`prefill matches the reference for causal blocks (${dtype} cache)`, () => {
      setSimdLevel(level);
      const random = rng(dtype === 'float32' ? 21 : 22);
      for (const [numHeads, numKvHeads, d, m] of [
        [4, 2, 64, 37],
        [8, 1, 32, 70],
        [3, 3, 80, 5],
        [16, 2, 128, 9],
      ]) {
        const lengths = Array.from({ length: numKvHeads }, () => m + Math.floor(random() * 300));
        const cache = randomCache(random, lengths, d, dtype);
        const q = randomArray(random, m * numHeads * d, 2);
        const args = { q, numHeads, headDim: d, blockLength: m };
        const mass = lengths.map((n) => new Float32Array(n));
        const out = prefill({ ...args, heads: cache.heads, attentionMass: mass });
        const expectedMass = lengths.map((n) => new Float32Array(n));
        const expected = referenceAttention({ ...args, heads: cache.rounded, attentionMass: expectedMass });
        expect(relativeError(out, expected)).toBeLessThanOrEqual(1e-5);
        for (let g = 0; g < numKvHeads; g++) {
          expect(relativeError(mass[g], expectedMass[g])).toBeLessThanOrEqual(1e-5);
          // Every query head's distribution sums to 1: a group receives (H / Hkv) · m in total.
          const total = mass[g].reduce((s, x) => s + x, 0);
          expect(total).toBeCloseTo((numHeads / numKvHeads) * m, 3);
        }
      }
    });
  }

  it('handles odd head dims and groups larger than one query set', () => {
    setSimdLevel(level);
    const random = rng(35);
    for (const [numHeads, numKvHeads, d, m] of [
      [96, 1, 7, 3],
      [130, 2, 1, 1],
      [3, 1, 257, 2],
      [2, 2, 9, 1],
    ]) {
      const lengths = Array.from({ length: numKvHeads }, () => m + Math.floor(random() * 150));
      const cache = randomCache(random, lengths, d, 'float32');
      const q = randomArray(random, m * numHeads * d, 2);
      const args = { q, numHeads, headDim: d, blockLength: m };
      const mass = lengths.map((n) => new Float32Array(n));
      const out = prefill({ ...args, heads: cache.heads, attentionMass: mass });
      const expectedMass = lengths.map((n) => new Float32Array(n));
      const expected = referenceAttention({ ...args, heads: cache.heads, attentionMass: expectedMass });
      expect(relativeError(out, expected)).toBeLessThanOrEqual(1e-5);
      for (let g = 0; g < numKvHeads; g++) expect(relativeError(mass[g], expectedMass[g])).toBeLessThanOrEqual(1e-5);
    }
  });

  it('prefill with one token equals decode', () => {
    setSimdLevel(level);
    const random = rng(31);
    const cache = randomCache(random, [300, 129, 1000], 64, 'float32');
    const q = randomArray(random, 6 * 64);
    const a = decode({ q, heads: cache.heads, numHeads: 6, headDim: 64 });
    const b = prefill({ q, heads: cache.heads, numHeads: 6, headDim: 64, blockLength: 1 });
    expect(relativeError(b, a)).toBeLessThanOrEqual(1e-6);
  });

  it('prefill over a block equals m decodes over a growing cache', () => {
    setSimdLevel(level);
    const random = rng(41);
    const [H, Hkv, d, m] = [8, 2, 64, 40];
    const cache = randomCache(random, [500, 230], d, 'float16');
    const q = randomArray(random, m * H * d, 2);
    const mass = cache.heads.map((h) => new Float32Array(h.length));
    const block = prefill({ q, heads: cache.heads, numHeads: H, headDim: d, blockLength: m, attentionMass: mass });
    const summed = cache.heads.map((h) => new Float32Array(h.length));
    for (let t = 0; t < m; t++) {
      const heads = cache.heads.map((h) => ({ ...h, length: h.length - m + t + 1 }));
      const stepMass = heads.map((h) => new Float32Array(h.length));
      const step = decode({
        q: q.subarray(t * H * d, (t + 1) * H * d),
        heads,
        numHeads: H,
        headDim: d,
        attentionMass: stepMass,
      });
      expect(relativeError(block.subarray(t * H * d, (t + 1) * H * d), step)).toBeLessThanOrEqual(1e-6);
      for (let g = 0; g < Hkv; g++) for (let j = 0; j < heads[g].length; j++) summed[g][j] += stepMass[g][j];
    }
    for (let g = 0; g < Hkv; g++) expect(relativeError(mass[g], summed[g])).toBeLessThanOrEqual(1e-5);
  });

  it('a core with logSize ln(s) equals s identical copies of it', () => {
    setSimdLevel(level);
    const random = rng(51);
    const d = 64;
    const n = 200;
    const copies = [1, 2, 3, 7, 1, 5];
    const base = randomCache(random, [n], d, 'float32', { logSizeMax: 0, slack: 0 }).heads[0];
    // Cores at positions 10, 50, … get size s; the expanded cache repeats them s times with logSize 0.
    const coreAt = new Map<number, number>(copies.map((s, i) => [10 + 37 * i, s]));
    const logSizes = new Float32Array(n);
    const rows: number[] = [];
    for (let j = 0; j < n; j++) {
      const s = coreAt.get(j) ?? 1;
      logSizes[j] = Math.log(s);
      for (let c = 0; c < s; c++) rows.push(j);
    }
    const expanded: HeadCache = {
      keys: new Float32Array(rows.length * d),
      values: new Float32Array(rows.length * d),
      logSizes: new Float32Array(rows.length),
      length: rows.length,
    };
    rows.forEach((j, r) => {
      expanded.keys.set(base.keys.subarray(j * d, (j + 1) * d), r * d);
      expanded.values.set(base.values.subarray(j * d, (j + 1) * d), r * d);
    });
    const q = randomArray(random, 4 * d, 3);
    const core = decode({ q, heads: [{ ...base, logSizes }], numHeads: 4, headDim: d });
    const full = decode({ q, heads: [expanded], numHeads: 4, headDim: d });
    for (let i = 0; i < core.length; i++) expect(Math.abs(core[i] - full[i])).toBeLessThanOrEqual(1e-6);
  });

  it('masks entries whose logSize is -Infinity and gives zeros when nothing is visible', () => {
    setSimdLevel(level);
    const random = rng(61);
    const d = 32;
    const cache = randomCache(random, [100, 100], d, 'float32', { slack: 0 });
    cache.heads[0].logSizes.fill(Number.NEGATIVE_INFINITY, 0, 60);
    cache.heads[1].logSizes.fill(Number.NEGATIVE_INFINITY);
    const q = randomArray(random, 2 * d);
    const mass = [new Float32Array(100), new Float32Array(100)];
    const out = decode({ q, heads: cache.heads, numHeads: 2, headDim: d, attentionMass: mass });
    const visible = {
      keys: cache.heads[0].keys.subarray(60 * d),
      values: cache.heads[0].values.subarray(60 * d),
      logSizes: cache.heads[0].logSizes.subarray(60),
      length: 40,
    };
    const expected = decode({ q: q.subarray(0, d), heads: [visible], numHeads: 1, headDim: d });
    expect(relativeError(out.subarray(0, d), expected)).toBeLessThanOrEqual(1e-6);
    expect(Array.from(out.subarray(d))).toEqual(new Array(d).fill(0));
    expect(mass[0].subarray(0, 60).every((x) => x === 0)).toBe(true);
    expect(mass[0].reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    expect(mass[1].every((x) => x === 0)).toBe(true);
  });

  it('honours a custom scale and writes into a given out', () => {
    setSimdLevel(level);
    const random = rng(71);
    const cache = randomCache(random, [333], 64, 'float32');
    const q = randomArray(random, 2 * 64);
    const out = new Float32Array(2 * 64);
    const result = decode({ q, heads: cache.heads, numHeads: 2, headDim: 64, scale: 0.37, out });
    expect(result).toBe(out);
    const expected = referenceAttention({ q, heads: cache.heads, numHeads: 2, headDim: 64, scale: 0.37 });
    expect(relativeError(out, expected)).toBeLessThanOrEqual(1e-5);
  });
});

describe('threads and async', () => {
  it('gives the same answer with 1, 2 and 3 threads, split-K included', () => {
    const random = rng(81);
    const cache = randomCache(random, [20000, 9000], 64, 'float32');
    const q = randomArray(random, 4 * 64, 2);
    const args = { q, heads: cache.heads, numHeads: 4, headDim: 64 };
    const expected = referenceAttention(args);
    for (const threads of [1, 2, 3]) {
      setThreads(threads);
      expect(getThreads()).toBe(threads);
      const mass = cache.heads.map((h) => new Float32Array(h.length));
      expect(relativeError(decode({ ...args, attentionMass: mass }), expected)).toBeLessThanOrEqual(1e-5);
      expect(mass[0].reduce((s, x) => s + x, 0)).toBeCloseTo(2, 4);
      const block = prefill({ ...args, q: randomArray(random, 3 * 4 * 64), blockLength: 3 });
      expect(block.every(Number.isFinite)).toBe(true);
    }
    setThreads(defaultThreads);
  });

  it('async forms match the sync ones, run concurrently, and keep the event loop free', async () => {
    const random = rng(91);
    const cache = randomCache(random, [4000, 3000], 64, 'float16');
    const jobs = Array.from({ length: 4 }, () => randomArray(random, 8 * 64, 2));
    const results = await Promise.all(
      jobs.map((q) => decodeAsync({ q, heads: cache.heads, numHeads: 8, headDim: 64 })),
    );
    jobs.forEach((q, i) => {
      expect(relativeError(results[i], decode({ q, heads: cache.heads, numHeads: 8, headDim: 64 }))).toBe(0);
    });

    // A long prefill: a 1 ms interval keeps firing while it runs, and a sync call meanwhile still works.
    const m = 1024;
    const long = randomCache(random, [m, m], 64, 'float32');
    const q = randomArray(random, m * 4 * 64);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const pending = prefillAsync({ q, heads: long.heads, numHeads: 4, headDim: 64, blockLength: m });
    const during = decode({ q: jobs[0], heads: cache.heads, numHeads: 8, headDim: 64 });
    // Settings stay responsive while the pool is busy; a new size applies from the next call that takes the pool.
    setThreads(1);
    expect(getThreads()).toBe(1);
    expect(['avx512', 'avx2', 'scalar']).toContain(simdLevel());
    setThreads(defaultThreads);
    const out = await pending;
    clearInterval(timer);
    // The pool was busy, so the sync call ran on this thread alone: same math, another split-K summation order.
    const expected = referenceAttention({ q: jobs[0], heads: cache.rounded, numHeads: 8, headDim: 64 });
    expect(relativeError(during, expected)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(results[0], expected)).toBeLessThanOrEqual(1e-5);
    expect(ticks).toBeGreaterThan(0);
    const sync = prefill({ q, heads: long.heads, numHeads: 4, headDim: 64, blockLength: m });
    expect(relativeError(out, sync)).toBe(0);
  });

  it('async validation errors reject instead of throwing', async () => {
    await expect(decodeAsync({ q: new Float32Array(3), heads: [], numHeads: 1, headDim: 3 })).rejects.toThrow(
      RangeError,
    );
    await expect(
      prefillAsync({ q: new Float32Array(3), heads: [], numHeads: 1, headDim: 3, blockLength: 0 }),
    ).rejects.toThrow(RangeError);
  });
});
