const assert = require('node:assert/strict');
const { KVCache, SnapshotError, float16BitsToFloat32, float32ToFloat16Bits } = require('@semanticache/kv-cache');

assert.equal(float16BitsToFloat32(float32ToFloat16Bits(1.5)), 1.5);
const cache = new KVCache({ numLayers: 2, numKvHeads: 2, headDim: 2, dtype: 'float32' });
cache.append(1, Float32Array.from([1, 2, 3, 4]), Float32Array.from([5, 6, 7, 8]), Int32Array.from([0]));
assert.equal(cache.length(1, 1), 1);
assert.deepEqual([...cache.readFloat32(1, 1, 'values')], [7, 8]);
const bytes = cache.snapshot();
bytes[bytes.length - 1] ^= 0xff;
assert.throws(() => KVCache.restore(bytes), SnapshotError);
console.log('append, read, corrupted snapshot → SnapshotError');
