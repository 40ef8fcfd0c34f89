import type { Worker } from 'node:worker_threads';
import type { ModelConfig } from './config.js';
import { DisposedError, deserializeError, type SerializedError } from './errors.js';
import {
  type BuiltGraph,
  buildGraph,
  type GraphKey,
  type GraphOptions,
  graphBuilders,
  graphLoadOrder,
} from './graphs.js';
import type { ModelWeights, StreamedWeights } from './weights.js';
import { startWorker } from './worker-start.js';

/** A graph and which one it is. */
export interface KeyedGraph {
  key: GraphKey;
  graph: BuiltGraph;
}

/**
 * A model's graphs, one at a time (each of {@link graphLoadOrder} once): the loader hands each to ORT as it comes, so
 * the bytes of only a few graphs exist at once.
 */
export interface GraphStream {
  next(): Promise<KeyedGraph>;
  /** Stops what is still being built; called once the load has finished or failed. */
  close(): Promise<void>;
}

/** The graphs built in this thread, in load order, between the loader's session creations. */
export function graphsInThread(config: ModelConfig, weights: ModelWeights, options: GraphOptions): GraphStream {
  const build = graphBuilders(config, weights, options);
  const order = graphLoadOrder(config.numLayers);
  let at = 0;
  return {
    async next() {
      const key = order[at++];
      if (key === undefined) throw new RangeError('graph stream: every graph has been taken');
      const graph = buildGraph(build, key);
      // the bytes hold copies of the weights: a streamed source may recycle its arrays for the next graph
      (weights as Partial<StreamedWeights>).release?.();
      return { key, graph };
    },
    async close() {},
  };
}

/** What a graph worker is started with (`workerData`). */
export interface GraphWorkerData {
  dir: string;
  config: ModelConfig;
  options: GraphOptions;
  /** the graphs it builds, in this order */
  keys: GraphKey[];
}

/** graph worker → loader; the loader answers each graph it takes with a message that lets the worker build one more. */
export type GraphWorkerMessage = KeyedGraph | { error: SerializedError };

export function graphBuffers(graph: BuiltGraph): ArrayBuffer[] {
  const parts = graph instanceof Uint8Array ? [graph] : [graph.post, graph.pre];
  return parts.map((p) => p.buffer as ArrayBuffer);
}

/**
 * The graphs of an HF checkpoint folder built by `workers` worker threads (graph i of the load order by worker
 * i mod workers), each reading, widening and quantizing its own layers while this thread hands finished graphs to
 * ORT: session creation blocks the thread that calls it, so building beside it overlaps the two. Graphs come in the
 * order they are finished, so the loader never waits for one while another is ready. Each worker is at most one
 * graph ahead of the loader (one finished, one being built), which bounds the memory in flight.
 */
export function graphsInWorkers(dir: string, config: ModelConfig, options: GraphOptions, workers: number): GraphStream {
  const order = graphLoadOrder(config.numLayers);
  const n = Math.max(1, Math.min(workers, order.length));
  const lanes: { worker: Worker; expected: number; received: number }[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const keys = order.filter((_, j) => j % n === i);
      const data: GraphWorkerData = { dir, config, options, keys };
      lanes.push({ worker: startWorker('graph-worker', data), expected: keys.length, received: 0 });
    }
  } catch (err) {
    for (const lane of lanes) void lane.worker.terminate();
    throw err;
  }
  const finished: { graph: KeyedGraph; worker: Worker }[] = [];
  const waiting: { resolve: (g: KeyedGraph) => void; reject: (e: Error) => void }[] = [];
  // the first error of any worker fails the whole stream: the load stops at the loader's next graph
  let failed: Error | undefined;
  const fail = (err: Error) => {
    failed ??= err;
    for (const w of waiting.splice(0)) w.reject(failed);
  };
  const take = (graph: KeyedGraph, worker: Worker) => {
    worker.postMessage('more');
    return graph;
  };
  for (const lane of lanes) {
    lane.worker.on('message', (msg: GraphWorkerMessage) => {
      if ('error' in msg) return fail(deserializeError(msg.error));
      lane.received++;
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(take(msg, lane.worker));
      else finished.push({ graph: msg, worker: lane.worker });
    });
    lane.worker.on('error', fail);
    lane.worker.on('exit', (code) => {
      if (lane.received < lane.expected) {
        fail(new DisposedError(`a graph worker stopped (exit code ${code}) before building its graphs`));
      }
    });
  }
  let taken = 0;
  return {
    next() {
      if (failed) return Promise.reject(failed);
      if (taken >= order.length) return Promise.reject(new RangeError('graph stream: every graph has been taken'));
      taken++;
      const ready = finished.shift();
      if (ready) return Promise.resolve(take(ready.graph, ready.worker));
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    async close() {
      fail(new DisposedError('the load has finished'));
      await Promise.all(lanes.map((lane) => lane.worker.terminate()));
    },
  };
}
