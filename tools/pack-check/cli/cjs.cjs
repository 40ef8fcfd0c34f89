// require(): the version comes from the installed package.json; helpers work.
const assert = require('node:assert/strict');
const { COMMANDS, VERSION, mainHelp, toMarkdown } = require('@semanticache/cli');

assert.equal(VERSION, require('@semanticache/cli/package.json').version);
assert.ok(mainHelp().includes('demo'));
assert.ok(COMMANDS.length >= 5);
const md = toMarkdown({ columns: ['policy', 'ppl'], rows: [['full', 12.5]] });
assert.ok(md.includes('| full'), md);
console.log(`VERSION ${VERSION}, ${COMMANDS.length} commands`);
