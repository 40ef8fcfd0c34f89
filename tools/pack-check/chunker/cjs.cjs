// The same through require, plus a tokenizer.json-shaped input and its typed error.
const assert = require('node:assert/strict');
const {
  chunk,
  delimitersFromVocabulary,
  TokenizerFormatError,
  delimitersFromTokenizerJson,
} = require('@semanticache/chunker');

const set = delimitersFromVocabulary(['a', ' b', ';', '.'], { level: 'clause' });
assert.deepEqual([...set.isDelimiter], [0, 0, 1, 1]);
assert.deepEqual([...chunk([0, 1, 2, 0, 1, 3], set, { minLength: 1, maxLength: 4 })], [0, 3, 6]);
assert.throws(() => delimitersFromTokenizerJson('not json'), TokenizerFormatError);
console.log('clause chunks 0,3,6; TokenizerFormatError thrown');
