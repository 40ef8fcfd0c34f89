// Helpers shared by the tests: free ports, a real redis-server, the server as a child process.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { APIError } from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));

const tempDirs: string[] = [];

/** A fresh folder in the OS temp folder, removed after the test file (test-setup.ts). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves with the first match of `pattern` in the child's output; rejects on exit or after `timeoutMs`. */
function waitFor(child: ChildProcess, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (data: Buffer) => {
      seen += data.toString();
      const m = seen.match(pattern);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what} exited (code ${code}) before it was ready:\n${seen}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} was not ready after ${timeoutMs} ms:\n${seen}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

export interface RedisProcess {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A throwaway redis-server on a loopback port: no persistence, gone when stopped. */
export async function startRedis(port?: number): Promise<RedisProcess> {
  if (!hasRedis)
    throw new Error('redis-server is not installed: run tools/setup.sh as root, or apt-get install redis-server');
  const p = port ?? (await freePort());
  const child = spawn(
    'redis-server',
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tempDir('sc-redis-')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitFor(child, /Ready to accept connections/, 20_000, 'redis-server');
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    async stop() {
      child.kill('SIGKILL');
      await exited(child);
    },
  };
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** sends `signal` and resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `semanticache-server` from source in a child process; resolves once it listens. */
export async function spawnServer(args: string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'cli.ts'), '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: path.join(here, '..'),
  });
  const m = await waitFor(child, /listening on (http:\/\/\S+)/, 90_000, 'semanticache-server');
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url: m[1],
    child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      child.kill(signal);
      return exited(child);
    },
  };
}

/** What the SDK threw for a request that must fail. */
export async function apiError(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof APIError) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}

/** The HTTP status a client call ends with: 200, or the APIError's status. */
export async function statusOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof APIError) return err.status;
    throw err;
  }
}
