// Delimiters from a tiny vocabulary, then chunk offsets.
import assert from 'node:assert/strict';
import { chunk, chunkLengths, delimitersFromVocabulary } from '@semanticache/chunker';

const vocab = ['<s>', 'The', ' cat', ' sat', '.', ' It', ' slept', ',', ' then', ' left', '!', '\n'];
const set = delimitersFromVocabulary(vocab, { specialIds: [0] });
assert.equal(set.level, 'sentence');
assert.deepEqual([...set.isDelimiter], [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1]);
const offsets = chunk([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2, 3, 4], set, { minLength: 2, maxLength: 8 });
assert.deepEqual([...offsets], [0, 5, 12, 16]);
assert.deepEqual([...chunkLengths(offsets)], [5, 7, 4]);
console.log(`chunk offsets ${[...offsets]}`);
