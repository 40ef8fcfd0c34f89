import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker-thread entry that sits next to this module: the built `<entry>.js` in dist, or, when running from
 * source (tests, tsx), `<entry>.ts` behind tsx's loader, registered inside the worker (Node 20 does not pass loaders
 * to workers).
 */
export function startWorker(entry: 'worker' | 'graph-worker', workerData?: unknown): Worker {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const built = path.join(here, `${entry}.js`);
  if (existsSync(built)) return new Worker(built, { workerData });
  const source = pathToFileURL(path.join(here, `${entry}.ts`)).href;
  return new Worker(
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); })`,
    { eval: true, workerData },
  );
}
