import { type CliContext, EXIT_OK, loadRuntimeEngine, main } from '@semanticache/cli';
import { demoModelDir } from '@semanticache/model-demo';

const ctx: CliContext = {
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: async () => undefined,
  signal: new AbortController().signal,
  loadEngine: loadRuntimeEngine,
  demoModelDir: () => demoModelDir,
};
export const run = async (): Promise<boolean> => (await main(['demo', '--max-tokens', '4'], ctx)) === EXIT_OK;
