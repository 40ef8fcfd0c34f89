const assert = require('node:assert/strict');
const { gscCluster, DEFAULT_THRESHOLD } = require('@semanticache/gsc-cluster');

const keys = Float32Array.from([1, 0, 0.99, 0.1, 0, 1, 0.1, 0.99]);
const r = gscCluster(keys, 4, 2, Uint32Array.from([0, 4]), { threshold: DEFAULT_THRESHOLD, compareTo: 'centroid' });
assert.deepEqual([...r.assignment], [0, 0, 1, 1]);
console.log(`assignment ${[...r.assignment]}`);
