// Shared fixtures for the tests: seeded random caches and error metrics.
import { rng } from '@semanticache/testing';
import { afterAll } from 'vitest';
import { getThreads, type SimdLevel, setSimdLevel, setThreads, supportsAvx2, supportsAvx512 } from './index.js';
import { float16BitsToFloat32Array, float32ArrayToFloat16Bits } from './reference.js';
import type { HeadCache, KVDtype } from './types.js';

export { rng };

/** The kernel paths this machine runs: every kernel test runs each. */
export const SIMD_LEVELS: SimdLevel[] = [
  ...(supportsAvx512() ? (['avx512'] as const) : []),
  ...(supportsAvx2() ? (['avx2'] as const) : []),
  'scalar',
];

/** Puts the kernel's SIMD level and thread count back once the calling file's tests are done. */
export function restoreKernelSettingsAfterAll(): void {
  const threads = getThreads();
  afterAll(() => {
    setSimdLevel('auto');
    setThreads(threads);
  });
}

export function randomArray(random: () => number, n: number, amplitude = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (random() * 2 - 1) * amplitude;
  return a;
}

export interface RandomCache {
  heads: HeadCache[];
  /** fp32 copies of what the kernel reads (fp16-rounded for a fp16 cache). */
  rounded: HeadCache[];
  /** The fp32 values before any rounding. */
  raw: HeadCache[];
}

/** Hkv heads with the given lengths; capacity slack after `length` is filled with garbage the kernel must not read. */
export function randomCache(
  random: () => number,
  lengths: number[],
  d: number,
  dtype: KVDtype,
  options: { logSizeMax?: number; slack?: number } = {},
): RandomCache {
  const slack = options.slack ?? 3;
  const logSizeMax = options.logSizeMax ?? Math.log(8);
  const raw: HeadCache[] = lengths.map((length) => {
    const keys = randomArray(random, (length + slack) * d);
    const values = randomArray(random, (length + slack) * d);
    const logSizes = new Float32Array(length + slack);
    for (let j = 0; j < length + slack; j++) logSizes[j] = random() * logSizeMax;
    for (let j = length * d; j < keys.length; j++) {
      keys[j] = Number.NaN;
      values[j] = Number.NaN;
    }
    for (let j = length; j < logSizes.length; j++) logSizes[j] = Number.NaN;
    return { keys, values, logSizes, length };
  });
  if (dtype === 'float32') return { heads: raw, rounded: raw, raw };
  const heads = raw.map((h) => ({
    ...h,
    keys: float32ArrayToFloat16Bits(h.keys as Float32Array),
    values: float32ArrayToFloat16Bits(h.values as Float32Array),
  }));
  const rounded = heads.map((h) => ({
    ...h,
    keys: float16BitsToFloat32Array(h.keys as Uint16Array),
    values: float16BitsToFloat32Array(h.values as Uint16Array),
  }));
  return { heads, rounded, raw };
}

/** max |a − b| / max |b|: error relative to the output's scale (element-wise ratios explode near zero). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    if (!(e <= diff)) diff = e; // NaN propagates
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / (scale || 1);
}
