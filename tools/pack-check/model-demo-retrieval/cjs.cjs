// The CJS build finds the same folder (its path comes from import.meta.url shimmed to __filename).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { retrievalModelDir, requireRetrievalModelDir } = require('@semanticache/model-demo-retrieval');

assert.equal(
  requireRetrievalModelDir(),
  path.join(path.dirname(require.resolve('@semanticache/model-demo-retrieval/package.json')), 'weights'),
);
assert.ok(fs.existsSync(path.join(retrievalModelDir, 'config.json')));
assert.ok(fs.existsSync(require.resolve('@semanticache/model-demo-retrieval/weights/config.json')));
console.log(retrievalModelDir);
