import { OptionsError, parseServerArgs, USAGE } from './options.js';
import { startServer } from './server.js';

let options: ReturnType<typeof parseServerArgs>;
try {
  options = parseServerArgs(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof OptionsError)) throw err;
  process.stderr.write(`semanticache-server: ${err.message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (!options) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

startServer(options).then(
  (server) => {
    // the line scripts and tests wait for; pino logs the same address as JSON
    process.stderr.write(`semanticache-server listening on ${server.url} (model ${options.modelName})\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1); // a second signal: give up waiting
      stopping = true;
      server.app.log.info(`${signal}: finishing in-flight requests, then exiting`);
      server.close().then(
        () => process.exit(0),
        (err) => {
          process.stderr.write(`semanticache-server: shutdown failed: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  },
  (err) => {
    process.stderr.write(`semanticache-server: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
