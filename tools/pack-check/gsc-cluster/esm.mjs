// Two groups of identical directions in one chunk: two clusters.
import assert from 'node:assert/strict';
import { gscCluster, minClusters } from '@semanticache/gsc-cluster';

const a = [1, 0, 0, 0];
const b = [0, 1, 0, 0];
const keys = Float32Array.from([a, a, a, b, b, b].flat());
const offsets = Uint32Array.from([0, 6]);
const r = gscCluster(keys, 6, 4, offsets, { threshold: 0.8 });
assert.equal(r.numClusters, 2);
assert.deepEqual([...r.assignment], [0, 0, 0, 1, 1, 1]);
assert.equal(minClusters(6, offsets), 1);
const t = gscCluster(keys, 6, 4, offsets, { targetClusters: 4 });
assert.equal(t.numClusters, 4);
console.log(`assignment ${[...r.assignment]}`);
