import { SettingsError } from '@semanticache/eval';
import { type CommandSpec, helpText } from './args.js';
import { benchCommand, benchSpec } from './commands/bench.js';
import { demoCommand, demoSpec } from './commands/demo.js';
import { evalCommand, evalSpec } from './commands/eval.js';
import { generateCommand, generateSpec } from './commands/generate.js';
import { inspectCommand, inspectSpec } from './commands/inspect.js';
import { serveCommand, serveSpec } from './commands/serve.js';
import type { CliContext } from './context.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { readVersion } from './version.js';

/** This package's version, from its package.json. */
export const VERSION: string = readVersion();

interface Command {
  spec: CommandSpec;
  run(ctx: CliContext, argv: string[]): Promise<number>;
}

export const COMMANDS: Command[] = [
  { spec: demoSpec, run: demoCommand },
  { spec: generateSpec, run: generateCommand },
  { spec: evalSpec, run: evalCommand },
  { spec: benchSpec, run: benchCommand },
  { spec: inspectSpec, run: inspectCommand },
  { spec: serveSpec, run: serveCommand },
];

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => [c.spec.name, ...(c.spec.aliases ?? [])].join(', ').length)) + 2;
  return [
    'Usage: semanticache <command> [options]',
    '',
    'KV-cache compression along semantic boundaries, on a local Llama-family model.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${[c.spec.name, ...(c.spec.aliases ?? [])].join(', ').padEnd(width)}${c.spec.short}`),
    '',
    'Run `semanticache <command> --help` for its options. Without --model, the embedded 17.3M-parameter demo model is used.',
    '',
  ].join('\n');
}

function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.spec.name === name || c.spec.aliases?.includes(name));
}

/** Runs the command line `argv` (without node and the script); returns the process exit code. */
export async function main(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] ? findCommand(rest[0]) : undefined;
    ctx.stdout.write(topic ? helpText(topic.spec) : mainHelp());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-v') {
    ctx.stdout.write(`${VERSION}\n`);
    return EXIT_OK;
  }
  const command = findCommand(name);
  if (!command) {
    ctx.stderr.write(`semanticache: unknown command '${name}'\n\n${mainHelp()}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(ctx, rest);
  } catch (err) {
    // a setting the evaluation library rejects came from a flag: the same usage error
    if (err instanceof UsageError || err instanceof SettingsError) {
      ctx.stderr.write(
        `semanticache ${command.spec.name}: ${err.message}\nUsage: ${command.spec.usage}\nRun 'semanticache ${command.spec.name} --help' for the options.\n`,
      );
      return EXIT_USAGE;
    }
    if (ctx.signal.aborted) {
      ctx.stderr.write('semanticache: interrupted\n');
      return EXIT_INTERRUPTED;
    }
    const e = err as Error;
    const message = (e?.message ?? String(err)).split('\n')[0];
    ctx.stderr.write(
      `semanticache ${command.spec.name}: ${e?.name && e.name !== 'Error' ? `${e.name}: ` : ''}${message}\n`,
    );
    if (process.env.SEMANTICACHE_DEBUG) ctx.stderr.write(`${e?.stack ?? ''}\n`);
    return EXIT_FAILURE;
  }
}
