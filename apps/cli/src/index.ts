// the engine loader `main`'s context takes (its home is @semanticache/eval)
export { loadRuntimeEngine } from '@semanticache/eval';
export type { CliContext, OutStream } from './context.js';
export { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
export { COMMANDS, main, mainHelp, VERSION } from './main.js';
