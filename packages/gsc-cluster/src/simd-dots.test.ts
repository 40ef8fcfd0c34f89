import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dotRows } from './gsc.js';
import { simdDots } from './simd-dots.js';

describe('SIMD dot kernel', () => {
  it('gives the same bits as the scalar dotRows for any d', () => {
    const kernel = simdDots();
    expect(kernel).not.toBeNull();
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 70 })
          .chain((d) =>
            fc.tuple(
              fc.constant(d),
              fc.array(fc.float({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 4 * d, maxLength: 4 * d }),
            ),
          ),
        ([d, values]) => {
          const keys = Float32Array.from(values);
          kernel!.load(keys, 4, 4);
          kernel!.index.set([0, 1, 2, 3]);
          kernel!.run(2, 1, 3, d);
          for (let r = 1; r < 4; r++) {
            expect(Object.is(kernel!.out[r - 1], dotRows(keys, 2 * d, r * d, d))).toBe(true);
          }
          const norms = new Float64Array(4);
          kernel!.squaredNorms(4, d, norms);
          for (let r = 0; r < 4; r++) expect(Object.is(norms[r], dotRows(keys, r * d, r * d, d))).toBe(true);
        },
      ),
    );
  });

  it('gives the same bits in groups of rows (dotsGroup) as row by row, for any d and count', () => {
    const kernel = simdDots();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (d, count, seed) => {
          let state = seed || 1;
          const next = () => {
            state = (state * 16807) % 2147483647;
            return state / 2147483647;
          };
          const rows = 16;
          const keys = Float32Array.from({ length: rows * d }, () => (next() - 0.5) * 1e3);
          kernel!.load(keys, rows, rows);
          for (let i = 0; i < rows; i++) kernel!.index[i] = Math.floor(next() * rows);
          const from = count % 3;
          kernel!.run(5, from, count, d);
          for (let i = 0; i < count; i++) {
            expect(Object.is(kernel!.out[i], dotRows(keys, 5 * d, kernel!.index[from + i] * d, d))).toBe(true);
          }
        },
      ),
    );
  });
});

describe('without WebAssembly', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.resetModules();
  });

  it('falls back to the scalar loop with identical results', async () => {
    const withSimd = await import('./gsc.js');
    vi.resetModules();
    vi.stubGlobal('WebAssembly', undefined);
    const scalar = await import('./gsc.js');
    const { simdDots: freshKernel } = await import('./simd-dots.js');
    expect(freshKernel()).toBeNull();
    let seed = 11;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647 - 0.5;
    };
    const n = 300;
    const d = 10;
    const keys = Float32Array.from({ length: n * d }, random);
    const offsets = Uint32Array.from({ length: 11 }, (_, c) => c * 30);
    for (const options of [{ threshold: 0.2 }, { threshold: 0.6 }, { targetClusters: 150 }]) {
      const a = withSimd.gscCluster(keys, n, d, offsets, options);
      const b = scalar.gscCluster(keys, n, d, offsets, options);
      expect(b.numClusters).toBe(a.numClusters);
      expect(Array.from(b.assignment)).toEqual(Array.from(a.assignment));
    }
  });
});
