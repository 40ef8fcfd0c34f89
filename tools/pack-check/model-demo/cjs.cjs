// The CJS build finds the same folder (its path comes from import.meta.url shimmed to __filename).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { demoModelDir, requireDemoModelDir } = require('@semanticache/model-demo');

assert.equal(
  requireDemoModelDir(),
  path.join(path.dirname(require.resolve('@semanticache/model-demo/package.json')), 'weights'),
);
assert.ok(fs.existsSync(path.join(demoModelDir, 'config.json')));
assert.ok(fs.existsSync(require.resolve('@semanticache/model-demo/weights/config.json')));
console.log(demoModelDir);
