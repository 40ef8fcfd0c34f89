import { describe, expect, it } from 'vitest';
import { compress } from './compress.js';
import { SnapshotError } from './errors.js';
import { crc32 } from './snapshot.js';
import { KVCache } from './store.js';
import { copyHeads, delimiters, randomImportance, syntheticCache } from './test-support.js';

function expectSameContents(a: KVCache, b: KVCache): void {
  expect(b.numLayers).toBe(a.numLayers);
  expect(b.dtype).toBe(a.dtype);
  expect(b.tokensSeen).toBe(a.tokensSeen);
  expect(b.bytes()).toEqual(a.bytes());
  expect(copyHeads(b)).toEqual(copyHeads(a));
}

function rejection(fn: () => unknown): SnapshotError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SnapshotError);
    return error as SnapshotError;
  }
  throw new Error('expected a SnapshotError');
}

describe('snapshot / restore', () => {
  it('computes the standard CRC-32', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  for (const dtype of ['float32', 'float16'] as const) {
    it(`round-trips (and clones) a ${dtype} cache bit for bit, raw and after compression`, () => {
      const { cache, tokenIds } = syntheticCache({ tokens: 300, dtype, numLayers: 2, numKvHeads: 2, headDim: 8 });
      const raw = KVCache.restore(cache.snapshot());
      expectSameContents(cache, raw);
      compress(cache, 'semanticache', {
        tokenIds,
        delimiters,
        budget: { ratio: 0.6 },
        windowImportance: randomImportance(cache, 7),
      });
      const bytes = cache.snapshot();
      const restored = KVCache.restore(bytes);
      expectSameContents(cache, restored);
      expect(restored.snapshot()).toEqual(bytes);
      // the restored cache keeps working: appends land after the restored entries, rollback stops at the seal
      const m = 2 * 8;
      restored.append(0, new Float32Array(m), new Float32Array(m), Int32Array.from([300]));
      expect(restored.length(0, 1)).toBe(cache.length(0, 1) + 1);
      expect(() => restored.truncate(200)).toThrow(RangeError);
      // a clone is the same as the round trip, and independent of its source
      const copy = cache.clone();
      expectSameContents(cache, copy);
      expect(copy.snapshot()).toEqual(bytes);
      copy.append(0, new Float32Array(m), new Float32Array(m), Int32Array.from([300]));
      expect(copy.length(0, 0)).toBe(cache.length(0, 0) + 1);
      expect(cache.snapshot()).toEqual(bytes);
      expect(() => copy.truncate(200)).toThrow(RangeError);
    });
  }

  it('restores into a live cache of the same shape', () => {
    const a = syntheticCache({ tokens: 64, seed: 1 }).cache;
    const b = syntheticCache({ tokens: 80, seed: 2 }).cache;
    b.restoreFrom(a.snapshot());
    expectSameContents(a, b);
  });

  it('rejects truncated, corrupted and mismatched snapshots, leaving the live cache untouched', () => {
    const { cache } = syntheticCache({ tokens: 100, dtype: 'float16' });
    const live = syntheticCache({ tokens: 50, dtype: 'float16', seed: 3 }).cache;
    const before = copyHeads(live);
    const good = cache.snapshot();

    expect(rejection(() => live.restoreFrom(good.subarray(0, good.length - 1))).reason).toBe('truncated');
    expect(rejection(() => live.restoreFrom(good.subarray(0, 30))).reason).toBe('truncated');
    expect(rejection(() => live.restoreFrom(good.subarray(0, 3))).reason).toBe('truncated');
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expect(rejection(() => live.restoreFrom(longer)).reason).toBe('trailing-bytes');
    for (const at of [40, Math.floor(good.length / 2), good.length - 2]) {
      const flipped = good.slice();
      flipped[at] ^= 0x10;
      expect(rejection(() => live.restoreFrom(flipped)).reason).toBe('checksum-mismatch');
    }
    const magic = good.slice();
    magic[0] = 0x58;
    expect(rejection(() => KVCache.restore(magic)).reason).toBe('bad-magic');
    const version = good.slice();
    version[4] = 9;
    expect(rejection(() => KVCache.restore(version)).reason).toBe('unsupported-version');
    const dtype = good.slice();
    dtype[20] = 7;
    expect(rejection(() => KVCache.restore(dtype)).reason).toBe('checksum-mismatch'); // the header's own CRC
    new DataView(dtype.buffer).setUint32(32, crc32(dtype.subarray(0, 32)), true);
    expect(rejection(() => KVCache.restore(dtype)).reason).toBe('invalid-header');
    const size = good.slice();
    size[24] ^= 1; // stated size off by one: caught by the header CRC, not mistaken for truncation
    expect(rejection(() => KVCache.restore(size)).reason).toBe('checksum-mismatch');
    const wrongShape = syntheticCache({ tokens: 20, dtype: 'float16', numKvHeads: 3 }).cache.snapshot();
    expect(rejection(() => live.restoreFrom(wrongShape)).reason).toBe('shape-mismatch');
    const wrongDtype = syntheticCache({ tokens: 20, dtype: 'float32' }).cache.snapshot();
    expect(rejection(() => live.restoreFrom(wrongDtype)).reason).toBe('shape-mismatch');
    expect(() => KVCache.restore([1, 2, 3] as unknown as Uint8Array)).toThrow(TypeError);

    expect(copyHeads(live)).toEqual(before);
  });
});
