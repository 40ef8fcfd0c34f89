// Two clusters of three become two cores of size 3; ln(size) is the kernel's bias.
import assert from 'node:assert/strict';
import { logSizes, mergeClusters } from '@semanticache/merge';

const keys = Float32Array.from([1, 0, 3, 0, 2, 0, 0, 1, 0, 3, 0, 2]);
const values = Float32Array.from([2, 2, 4, 4, 6, 6, 1, 1, 1, 1, 1, 1]);
const cores = mergeClusters({
  keys,
  values,
  n: 6,
  d: 2,
  assignment: Int32Array.from([0, 0, 0, 1, 1, 1]),
  numClusters: 2,
});
assert.deepEqual([...cores.keys], [2, 0, 0, 2]);
assert.deepEqual([...cores.values], [4, 4, 1, 1]);
assert.deepEqual([...cores.sizes], [3, 3]);
assert.deepEqual([...cores.positions], [1, 4]);
assert.ok(Math.abs(logSizes(cores.sizes)[0] - Math.log(3)) < 1e-6);
console.log(`cores ${[...cores.keys]}`);
