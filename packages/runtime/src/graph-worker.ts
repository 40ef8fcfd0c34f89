// Worker-thread entry of graphsInWorkers: builds its share of an HF checkpoint's graphs, one ahead of the loader.
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from './errors.js';
import type { GraphWorkerData, GraphWorkerMessage } from './graph-stream.js';
import { graphBuffers } from './graph-stream.js';
import { buildGraph, graphBuilders } from './graphs.js';
import { openHfWeights } from './weights.js';

if (!parentPort) throw new Error('graph-worker.ts must run in a worker thread (use graphsInWorkers)');
const port = parentPort;
const { dir, config, options, keys } = workerData as GraphWorkerData;

// one credit to start with, one more for each graph the loader takes
let credits = 1;
let wake: (() => void) | undefined;
port.on('message', () => {
  credits++;
  wake?.();
});

async function buildAll(): Promise<void> {
  const weights = openHfWeights(dir, config);
  try {
    const build = graphBuilders(config, weights, options);
    for (const key of keys) {
      while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
      const graph = buildGraph(build, key);
      weights.release();
      const message: GraphWorkerMessage = { key, graph };
      port.postMessage(message, graphBuffers(graph));
    }
  } finally {
    weights.close();
  }
}

buildAll().then(
  () => port.close(),
  (err) => {
    const message: GraphWorkerMessage = { error: serializeError(err) };
    port.postMessage(message);
    port.close();
  },
);
