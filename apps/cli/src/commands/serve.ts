import type { ServerOptions } from '@semanticache/server';
import type { CommandSpec } from '../args.js';
import type { CliContext } from '../context.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../errors.js';

export const serveSpec: CommandSpec = {
  name: 'serve',
  short: 'OpenAI-compatible HTTP server (the same as semanticache-server)',
  summary:
    'Serve the model over the OpenAI API (/v1/completions, /v1/chat/completions, /v1/models) with compressed, cached documents (/v1/caches). The options are semanticache-server’s; run `semanticache serve --help` for them.',
  usage: 'semanticache serve [semanticache-server options]',
  // the server parses its own flags: one list of them, in @semanticache/server
  options: {},
  maxPositionals: 0,
  examples: ['semanticache serve', 'semanticache serve --port 8080 --store redis://127.0.0.1:6379 --api-key "$KEY"'],
};

export async function serveCommand(ctx: CliContext, argv: string[]): Promise<number> {
  // loaded only for this command: the other commands start without Fastify and ioredis
  const server = await import('@semanticache/server');
  let options: ServerOptions | undefined;
  try {
    options = server.parseServerArgs(argv);
  } catch (err) {
    if (err instanceof server.OptionsError) throw new UsageError(err.message);
    throw err;
  }
  if (!options) {
    ctx.stdout.write(`${server.USAGE.replace(/^semanticache-server/, 'semanticache serve')}\n`);
    return EXIT_OK;
  }
  const running = await server.startServer(options);
  ctx.stderr.write(`semanticache serve: listening on ${running.url}\n`);
  // Ctrl-C (the context's signal) or SIGTERM: stop accepting, let in-flight requests finish, then return
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    process.once('SIGTERM', () => resolve());
  });
  try {
    await running.close();
  } catch (err) {
    ctx.stderr.write(`semanticache serve: shutdown failed: ${(err as Error).message}\n`);
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}
