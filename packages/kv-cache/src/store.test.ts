import { float16BitsToFloat32 } from '@semanticache/internal';
import { describe, expect, it } from 'vitest';
import { KVCache } from './store.js';
import { rng } from './test-support.js';

function block(m: number, H: number, d: number, seed: number): Float32Array {
  const random = rng(seed);
  return Float32Array.from({ length: m * H * d }, () => random() * 2 - 1);
}

describe('KVCache store', () => {
  it('splits token-major blocks into per-head rows, growing past the initial capacity', () => {
    const cache = new KVCache({ numLayers: 2, numKvHeads: 3, headDim: 4, dtype: 'float32', initialCapacity: 2 });
    const k1 = block(5, 3, 4, 1);
    const v1 = block(5, 3, 4, 2);
    const k2 = block(4, 3, 4, 3);
    const v2 = block(4, 3, 4, 4);
    cache.append(1, k1, v1, Int32Array.from([0, 1, 2, 3, 4]));
    cache.append(1, k2, v2, Int32Array.from([5, 6, 7, 8]));
    expect(cache.length(1, 2)).toBe(9);
    expect(cache.length(0, 0)).toBe(0);
    expect(cache.appendedTokens(1)).toBe(9);
    const heads = cache.heads(1);
    for (let h = 0; h < 3; h++) {
      for (let t = 0; t < 9; t++) {
        const [src, srcV, tt] = t < 5 ? [k1, v1, t] : [k2, v2, t - 5];
        expect(Array.from(heads[h].keys.subarray(t * 4, t * 4 + 4))).toEqual(
          Array.from(src.subarray((tt * 3 + h) * 4, (tt * 3 + h) * 4 + 4)),
        );
        expect(heads[h].values[t * 4 + 1]).toBe(srcV[(tt * 3 + h) * 4 + 1]);
      }
      expect(heads[h].length).toBe(9);
      expect(Array.from(heads[h].positions)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      expect(Array.from(heads[h].origins)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      expect(Array.from(heads[h].logSizes)).toEqual(new Array(9).fill(0));
    }
  });

  it('hands out zero-copy views, cached until the next change', () => {
    const cache = new KVCache({ numLayers: 1, numKvHeads: 2, headDim: 2, dtype: 'float32' });
    cache.append(0, block(3, 2, 2, 1), block(3, 2, 2, 2), Int32Array.from([0, 1, 2]));
    const a = cache.heads(0);
    expect(cache.heads(0)).toBe(a);
    a[1].keys[0] = 42; // a view, not a copy
    expect(cache.readFloat32(0, 1, 'keys')[0]).toBe(42);
    cache.append(0, block(1, 2, 2, 3), block(1, 2, 2, 4), Int32Array.from([3]));
    const b = cache.heads(0);
    expect(b).not.toBe(a);
    expect(b[1].keys[0]).toBe(42);
    expect(b[1].length).toBe(4);
  });

  it('stores fp16 bits and converts with round-to-nearest-even', () => {
    const cache = new KVCache({ numLayers: 1, numKvHeads: 1, headDim: 4, dtype: 'float16' });
    const keys = Float32Array.from([1, 1 + 2 ** -11, 65504, 2 ** -24]);
    cache.append(0, keys, keys, Int32Array.from([0]));
    const view = cache.head(0, 0);
    expect(view.keys).toBeInstanceOf(Uint16Array);
    expect(Array.from(view.keys)).toEqual([0x3c00, 0x3c00, 0x7bff, 0x0001]);
    expect(Array.from(cache.readFloat32(0, 0, 'values'))).toEqual([1, 1, 65504, 2 ** -24]);
    expect(float16BitsToFloat32(view.values[3])).toBe(2 ** -24);
  });

  it('accounts bytes exactly, before and after a replace', () => {
    const cache = new KVCache({ numLayers: 2, numKvHeads: 2, headDim: 8, dtype: 'float16', initialCapacity: 4 });
    for (let l = 0; l < 2; l++) cache.append(l, block(10, 2, 8, l), block(10, 2, 8, l + 5), new Int32Array(10));
    const perEntry = 2 * 8 * 2 + 4 + 8;
    expect(cache.bytes()).toEqual({ current: 40 * perEntry, full: 40 * perEntry, bookkeeping: 40 * 4 });
    const view = cache.head(0, 1);
    cache.replace(0, 1, {
      keys: view.keys.slice(0, 3 * 8),
      values: view.values.slice(0, 3 * 8),
      logSizes: Float32Array.from([0, Math.log(3), Math.log(6)]),
      positions: Float64Array.from([0, 2, 6.5]),
      origins: Int32Array.from([0, 1, 4]),
      length: 3,
    });
    expect(cache.bytes()).toEqual({ current: 33 * perEntry, full: 40 * perEntry, bookkeeping: 33 * 4 });
    expect(cache.capacityBytes).toBe(4 * 10 * (perEntry + 4)); // 4 heads; 4 grows to max(2·4, 10) = 10
    cache.shrinkToFit();
    expect(cache.capacityBytes).toBe(33 * (perEntry + 4));
    expect(Array.from(cache.head(0, 1).positions)).toEqual([0, 2, 6.5]);
  });

  it('rolls back raw tails, and refuses to cut into compressed entries', () => {
    const cache = new KVCache({ numLayers: 2, numKvHeads: 1, headDim: 2, dtype: 'float32' });
    for (let l = 0; l < 2; l++)
      cache.append(l, block(6, 1, 2, l), block(6, 1, 2, 9), Int32Array.from([0, 1, 2, 3, 4, 5]));
    const before = cache.head(1, 0).keys.slice();
    cache.truncate(4);
    expect(cache.length(1, 0)).toBe(4);
    expect(cache.tokensSeen).toBe(4);
    expect(Array.from(cache.head(1, 0).keys)).toEqual(Array.from(before.subarray(0, 8)));
    // compress layer 0 over its 4 tokens, then append 3 more and roll them back
    const v = cache.head(0, 0);
    cache.replace(0, 0, {
      keys: v.keys.slice(0, 4),
      values: v.values.slice(0, 4),
      logSizes: Float32Array.from([0, Math.log(3)]),
      positions: Float64Array.from([0, 2]),
      origins: Int32Array.from([0, 1]),
      length: 2,
    });
    for (let l = 0; l < 2; l++) cache.append(l, block(3, 1, 2, 1), block(3, 1, 2, 2), Int32Array.from([4, 5, 6]));
    expect(() => cache.truncate(3)).toThrow(/cannot roll back/);
    expect(cache.length(0, 0)).toBe(5); // untouched by the refused call
    expect(cache.length(1, 0)).toBe(7);
    cache.truncate(4);
    expect(cache.length(0, 0)).toBe(2);
    expect(cache.length(1, 0)).toBe(4);
    expect(cache.bytes().full).toBe(8 * (2 * 2 * 4 + 12));
  });

  it('rejects bad shapes and values with typed errors naming the argument', () => {
    const cache = new KVCache({ numLayers: 2, numKvHeads: 2, headDim: 4, dtype: 'float32' });
    const ok = block(2, 2, 4, 1);
    const pos = Int32Array.from([0, 1]);
    expect(() => cache.append(0, block(2, 2, 3, 1), ok, pos)).toThrow(/keys: expected 2 × 2 × 4/);
    expect(() => cache.append(0, ok, block(3, 2, 4, 1), pos)).toThrow(RangeError);
    expect(() => cache.append(0, Array.from(ok) as unknown as Float32Array, ok, pos)).toThrow(TypeError);
    expect(() => cache.append(2, ok, ok, pos)).toThrow(/layer/);
    expect(() => cache.append(0, ok, ok, [0, 1] as unknown as Int32Array)).toThrow(/positions/);
    const nan = ok.slice();
    nan[5] = Number.NaN;
    expect(() => cache.append(0, nan, ok, pos)).toThrow(/keys: non-finite value at index 5/);
    expect(() => cache.append(0, ok, ok, Float64Array.from([0, Number.POSITIVE_INFINITY]))).toThrow(/positions/);
    expect(cache.length(0, 0)).toBe(0);
    cache.append(0, ok, ok, pos);
    const v = cache.head(0, 0);
    const contents = { ...v, keys: v.keys.slice(), length: 2 };
    expect(() => cache.replace(0, 2, contents)).toThrow(/head/);
    expect(() => cache.replace(0, 0, { ...contents, length: 3 })).toThrow(RangeError);
    expect(() => cache.replace(0, 0, { ...contents, keys: new Uint16Array(8) })).toThrow(/Float32Array/);
    expect(() => cache.replace(0, 0, { ...contents, length: 1, origins: undefined })).toThrow(/origins/);
    expect(() => cache.replace(0, 0, { ...contents, origins: Int32Array.from([0, 5]) })).toThrow(/outside/);
    expect(() => new KVCache({ numLayers: 0, numKvHeads: 1, headDim: 1, dtype: 'float32' })).toThrow(/numLayers/);
    expect(() => new KVCache({ numLayers: 1, numKvHeads: 1, headDim: 1, dtype: 'bf16' as 'float32' })).toThrow(
      TypeError,
    );
    expect(() => cache.truncate(-1)).toThrow(RangeError);
  });
  it('splices a range in place (shrinking, growing, at either end), keeping the rest and failing cleanly', () => {
    for (const dtype of ['float32', 'float16'] as const) {
      const cache = new KVCache({ numLayers: 1, numKvHeads: 2, headDim: 3, dtype, initialCapacity: 8 });
      cache.append(
        0,
        block(8, 2, 3, 5),
        block(8, 2, 3, 6),
        Int32Array.from({ length: 8 }, (_, i) => i),
      );
      const before = cache.readFloat32(0, 1, 'keys');
      const beforeOther = cache.readFloat32(0, 0, 'values');
      const entries = (k: number, fill: number) => ({
        keys: new Float32Array(k * 3).fill(fill),
        values: new Float32Array(k * 3).fill(-fill),
        logSizes: new Float32Array(k).fill(Math.log(2)),
        positions: Float64Array.from({ length: k }, (_, i) => 100 + i),
        origins: Int32Array.from({ length: k }, (_, i) => i % 8),
        length: k,
      });
      // 8 entries: replace [2, 6) with 1 core → 5 entries, the tail moved down
      cache.splice(0, 1, 2, 6, entries(1, 0.5));
      const keys = cache.readFloat32(0, 1, 'keys');
      expect(cache.length(0, 1)).toBe(5);
      expect(Array.from(keys.subarray(0, 6))).toEqual(Array.from(before.subarray(0, 6)));
      expect(Array.from(keys.subarray(6, 9))).toEqual([0.5, 0.5, 0.5]);
      expect(Array.from(keys.subarray(9, 15))).toEqual(Array.from(before.subarray(18, 24)));
      const view = cache.head(0, 1);
      expect(Array.from(view.positions)).toEqual([0, 1, 100, 6, 7]);
      expect(Array.from(view.origins)).toEqual([0, 1, 0, 6, 7]);
      expect(view.logSizes[2]).toBeCloseTo(Math.log(2), 6);
      // growing past the capacity, and splicing at the end
      cache.splice(0, 1, 5, 5, entries(9, 0.25));
      expect(cache.length(0, 1)).toBe(14);
      expect(cache.readFloat32(0, 1, 'keys')[13 * 3]).toBe(0.25);
      expect(Array.from(cache.readFloat32(0, 0, 'values'))).toEqual(Array.from(beforeOther)); // other head untouched
      const length = cache.length(0, 1);
      expect(() => cache.splice(0, 1, 3, 2, entries(1, 1))).toThrow(RangeError);
      expect(() => cache.splice(0, 1, 0, length + 1, entries(1, 1))).toThrow(RangeError);
      expect(() => cache.splice(0, 1, 0, 1, { ...entries(1, 1), origins: undefined })).toThrow(/origins/);
      expect(() => cache.splice(0, 1, 0, 1, { ...entries(1, 1), origins: Int32Array.of(99) })).toThrow(/outside/);
      const own = cache.head(0, 1);
      expect(() =>
        cache.splice(0, 1, 0, 1, { ...entries(1, 1), keys: own.keys.subarray(0, 3) as Float32Array }),
      ).toThrow(dtype === 'float32' ? /share memory/ : /share memory|Float32Array/);
      if (dtype === 'float32') {
        expect(() => cache.splice(0, 1, 0, 1, { ...entries(1, Number.NaN) })).toThrow(/non-finite/);
      }
      expect(cache.length(0, 1)).toBe(length); // failed calls change nothing
    }
  });
});
