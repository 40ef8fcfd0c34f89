// require(): the option parser and its defaults.
const assert = require('node:assert/strict');
const { DEFAULTS, parseServerArgs, USAGE } = require('@semanticache/server');

assert.equal(DEFAULTS.kvDtype, 'float16');
assert.equal(parseServerArgs(['--port', '9000']).port, 9000);
assert.ok(USAGE.startsWith('semanticache-server'));
console.log(`defaults: port ${DEFAULTS.port}, workers ${DEFAULTS.workers}`);
