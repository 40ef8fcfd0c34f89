// Append 40 tokens, evict to 12 with StreamingLLM, then the SemantiCache policy (chunker → gsc-cluster → merge, all
// from their tarballs), then a snapshot round trip.
import assert from 'node:assert/strict';
import { delimitersFromVocabulary } from '@semanticache/chunker';
import { compress, KVCache } from '@semanticache/kv-cache';

const n = 40;
const d = 4;
const keys = new Float32Array(n * d).map((_, i) => Math.sin(i));
const values = new Float32Array(n * d).map((_, i) => Math.cos(i));
const positions = Int32Array.from({ length: n }, (_, i) => i);

const cache = new KVCache({ numLayers: 1, numKvHeads: 1, headDim: d, dtype: 'float32' });
cache.append(0, keys, values, positions);
const r = compress(cache, 'streaming-llm', { budget: { maxEntries: 12 }, sinkTokens: 4, recentWindow: 8 });
assert.equal(r.entriesBefore, 40);
assert.equal(cache.length(0, 0), 12);

const delimiters = delimitersFromVocabulary(['<s>', ' a', ' b', ' c', '.'], { specialIds: [0] });
const tokenIds = Array.from({ length: n }, (_, i) => [1, 2, 3, 4][i % 4]);
const half = new KVCache({ numLayers: 1, numKvHeads: 1, headDim: d, dtype: 'float16' });
half.append(0, keys, values, positions);
const s = compress(half, 'semanticache', {
  tokenIds,
  delimiters,
  budget: { ratio: 0.5 },
  preset: 'paper',
  sinkTokens: 2,
  recentWindow: 4,
});
assert.equal(s.entriesAfter, 20);
assert.equal(half.length(0, 0), 20);
const copy = KVCache.restore(half.snapshot());
assert.deepEqual(copy.readFloat32(0, 0, 'keys'), half.readFloat32(0, 0, 'keys'));
console.log(`streaming-llm 40 → 12, semanticache 40 → ${s.entriesAfter}, snapshot ok`);
