import { loadRuntimeEngine } from '@semanticache/eval';
import { demoModelDir } from '@semanticache/model-demo';
import type { CliContext } from './context.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK } from './errors.js';
import { main } from './main.js';

async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

// A reader that stops early (`semanticache run … | head -c 20`) closes stdout: like `cat`, end quietly with exit 0 and
// stop computing output nobody reads, instead of an unhandled EPIPE trace. The first write after the close fails
// (asynchronously), so a streaming command stops at its next token. Other write errors end with one line.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT_OK);
  process.stderr.write(`semanticache: cannot write the output: ${err.message}\n`);
  process.exit(EXIT_FAILURE);
});
// a closed stderr loses the progress and notes, not the output: carry on
process.stderr.on('error', () => {});

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
