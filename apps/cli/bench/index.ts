// `pnpm bench`: the command's own benchmark (speed and KV bytes vs context length per policy) on the demo model.
import { loadRuntimeEngine } from '@semanticache/eval';
import { demoModelDir } from '@semanticache/model-demo';
import { main } from '../src/main.js';

const controller = new AbortController();
process.on('SIGINT', () => controller.abort());

process.exitCode = await main(['bench', '--out', 'bench-results', ...process.argv.slice(2)], {
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: async () => undefined,
  signal: controller.signal,
  loadEngine: loadRuntimeEngine,
  demoModelDir: () => demoModelDir,
});
