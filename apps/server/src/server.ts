import { type App, buildApp } from './app.js';
import { ChatTemplate } from './chat-template.js';
import { DiskSnapshotStore } from './disk-store.js';
import { ServerMetrics } from './metrics.js';
import { DEFAULTS, type ServerOptions } from './options.js';
import { WorkerPool } from './pool.js';
import { RedisSnapshotStore } from './redis-store.js';
import type { SnapshotStore } from './store.js';
import { promptTokenizer } from './tokenize.js';

export interface RunningServer {
  /** http://host:port */
  url: string;
  port: number;
  app: App['app'];
  /**
   * Graceful stop: refuse new requests (503), let in-flight ones finish for up to `timeoutMs` (default: the
   * server's shutdown timeout), then cancel the rest; then free the workers and the store.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** A store from `--store`: a redis:// or rediss:// URL, or a directory. */
export function openStore(location: string, limits: { maxBytes: number; ttlSeconds: number }): SnapshotStore {
  if (/^rediss?:\/\//.test(location)) return new RedisSnapshotStore(location, limits);
  return new DiskSnapshotStore(location, limits);
}

/** Loads the model into its workers, opens the store and listens. */
export async function startServer(overrides: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const options: ServerOptions = { ...DEFAULTS, ...overrides };
  const template = ChatTemplate.fromModel(options.model);
  const metrics = new ServerMetrics();
  const pool = await WorkerPool.start(options.model, { workers: options.workers, maxQueue: options.maxQueue }, (s) => {
    metrics.queueDepth.set(s.queued);
    metrics.busyWorkers.set(s.busy);
  });
  let store: SnapshotStore;
  try {
    store = openStore(options.store, { maxBytes: options.storeMaxBytes, ttlSeconds: options.storeTtlSeconds });
  } catch (err) {
    await pool.close();
    throw err;
  }
  const tokenizer = promptTokenizer(options.model, pool);
  const built = buildApp({ options, pool, store, tokenizer, template, metrics });
  const { app } = built;
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await pool.close();
    await store.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    app,
    close(timeoutMs = options.shutdownTimeoutMs) {
      closing ??= (async () => {
        const timer = setTimeout(() => built.cancelAll('the server is shutting down'), timeoutMs);
        try {
          await app.close(); // stops accepting, waits for in-flight requests (streams included)
        } finally {
          clearTimeout(timer);
          await pool.close();
          await store.close();
        }
      })();
      return closing;
    },
  };
}
