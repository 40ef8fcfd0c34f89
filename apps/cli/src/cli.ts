import { demoModelDir } from '@semanticache/model-demo';
import type { CliContext } from './context';
import { EXIT_INTERRUPTED } from './errors';
import { main } from './main';
import { loadRuntimeEngine } from './runtime-engine';

async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts++;
  if (interrupts === 1) {
    process.stderr.write('\nstopping… (Ctrl-C again to quit at once)\n');
    controller.abort();
  } else process.exit(EXIT_INTERRUPTED);
});

const ctx: CliContext = {
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin,
  signal: controller.signal,
  loadEngine: loadRuntimeEngine,
  demoModelDir: () => demoModelDir,
};

main(process.argv.slice(2), ctx).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`semanticache: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
