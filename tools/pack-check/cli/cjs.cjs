// require(): the version comes from the installed package.json; the help lists the commands.
const assert = require('node:assert/strict');
const { COMMANDS, VERSION, mainHelp } = require('@semanticache/cli');

assert.equal(VERSION, require('@semanticache/cli/package.json').version);
assert.ok(mainHelp().includes('demo'));
assert.ok(COMMANDS.length >= 5);
console.log(`VERSION ${VERSION}, ${COMMANDS.length} commands`);
