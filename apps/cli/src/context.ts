import type { Engine, EngineOptions, ModelLocation } from '@semanticache/eval';
import { Progress, type ProgressStream } from './progress.js';

export interface OutStream extends ProgressStream {
  write(text: string): unknown;
}

/** Everything a command touches outside itself, so tests can drive commands in-process. */
export interface CliContext {
  stdout: OutStream;
  stderr: OutStream;
  /** text piped to the command, or undefined when stdin is a terminal */
  readStdin(): Promise<string | undefined>;
  /** aborted on SIGINT: commands stop at the next step and print what they have */
  signal: AbortSignal;
  loadEngine(location: ModelLocation, options: EngineOptions): Promise<Engine>;
  /** the embedded demo model's folder */
  demoModelDir(): string;
}

export function progressFor(ctx: CliContext, quiet: boolean) {
  return (label: string, total: number) => new Progress(label, total, { stream: ctx.stderr, quiet });
}

/** A line on stderr unless quiet: status notes that must not mix with stdout's results. */
export function note(ctx: CliContext, quiet: boolean, text: string): void {
  if (!quiet) ctx.stderr.write(`${text}\n`);
}
