import { type RunningServer, type ServerOptions, startServer } from '@semanticache/server';

const options: Partial<ServerOptions> = { port: 0, workers: 1, kvDtype: 'float16' };
const start: (o: Partial<ServerOptions>) => Promise<RunningServer> = startServer;
void start;
void options;
