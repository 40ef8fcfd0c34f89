// require(): retrieval cases, statistics and tables, without a model.
const assert = require('node:assert/strict');
const { FillerSource, pairedMeanDifference, passkeyCase, toMarkdown, signTest } = require('@semanticache/eval');

// a word-level codec is enough to size the filler
const words = [];
const codec = {
  encode: (text) =>
    (text.match(/\s*\S+|\s+$/g) ?? []).map((w) => {
      words.push(w);
      return words.length - 1;
    }),
  decode: (ids) => Array.from(ids, (id) => words[id]).join(''),
};
const text = Array.from({ length: 400 }, (_, i) => `Sentence number ${i} says little.`).join(' ');
const c = passkeyCase(new FillerSource(text, codec), codec, { contextTokens: 300, depth: 0.5, seed: 0, index: 0 });
const key = c.answer.match(/\d{5}/)?.[0];
assert.ok(key && c.context.includes(key), c.answer);
const est = pairedMeanDifference([1, 1, 0, 1], [0, 1, 0, 0], { resamples: 200, seed: 1 });
assert.equal(est.estimate, 0.5);
assert.equal(signTest(2, 0), 0.5);
assert.ok(toMarkdown({ columns: ['policy', 'ppl'], rows: [['full', 12.5]] }).includes('| full'));
console.log(`pass key ${key}; Δ ${est.estimate}`);
