// The CLI as a library: main() runs `run` on the embedded demo model (from the model-demo tarball) in-process.
import assert from 'node:assert/strict';
import { EXIT_OK, loadRuntimeEngine, main } from '@semanticache/cli';
import { demoModelDir } from '@semanticache/model-demo';

let out = '';
let err = '';
const code = await main(['run', 'Once upon a time', '--max-tokens', '6', '--quiet'], {
  stdout: { write: (t) => (out += t) },
  stderr: { write: (t) => (err += t) },
  readStdin: async () => undefined,
  signal: new AbortController().signal,
  loadEngine: loadRuntimeEngine,
  demoModelDir: () => demoModelDir,
});
assert.equal(code, EXIT_OK, err);
assert.ok(out.trim().length > 0, 'no text generated');
console.log(`run: ${JSON.stringify(out.trim().slice(0, 60))}`);
