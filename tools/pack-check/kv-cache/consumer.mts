import { delimitersFromVocabulary } from '@semanticache/chunker';
import { type CompressionResult, compress, type HeadView, KVCache, type PolicyName } from '@semanticache/kv-cache';

const cache = new KVCache({ numLayers: 1, numKvHeads: 1, headDim: 2, dtype: 'float16' });
cache.append(0, new Float32Array(2), new Float32Array(2), Int32Array.from([0]));
const views: HeadView[] = cache.heads(0);
const policy: PolicyName = 'semanticache';
const result: CompressionResult = compress(cache, policy, {
  tokenIds: [0],
  delimiters: delimitersFromVocabulary(['.']),
  budget: { ratio: 0.5 },
  preset: 'paper',
});
export const after: number = result.entriesAfter + views.length;
export const bytes: number = cache.bytes().current;
