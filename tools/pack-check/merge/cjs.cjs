const assert = require('node:assert/strict');
const { mergeClusters } = require('@semanticache/merge');

const cores = mergeClusters({
  keys: Float32Array.from([0, 4]),
  values: Float32Array.from([0, 4]),
  sizes: Float32Array.from([1, 3]),
  n: 2,
  d: 1,
  assignment: Int32Array.from([0, 0]),
  numClusters: 1,
  positionMode: 'first',
});
assert.deepEqual([...cores.keys], [3]);
assert.deepEqual([...cores.sizes], [4]);
assert.deepEqual([...cores.positions], [0]);
console.log('size-weighted core 3, size 4');
