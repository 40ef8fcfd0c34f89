import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseHfConfig } from './config.js';
import { DisposedError } from './errors.js';
import { type GraphStream, graphsInThread, graphsInWorkers, type KeyedGraph } from './graph-stream.js';
import { type GraphOptions, graphLoadOrder } from './graphs.js';
import { loadModel } from './model.js';
import { demoDir, parityDir, readJson } from './test-support.js';
import { openHfWeights } from './weights.js';

const configOf = (dir: string) => {
  const file = path.join(dir, 'config.json');
  return parseHfConfig(readJson(file), file);
};

/** Each graph's bytes as one Buffer (post and pre concatenated, so that large graphs compare fast), by key. */
const byKey = (graphs: KeyedGraph[]) =>
  new Map(
    graphs.map(({ key, graph: g }) => [
      key,
      Buffer.concat(g instanceof Uint8Array ? [g] : [g.post, Buffer.from('|'), g.pre]),
    ]),
  );

async function drain(stream: GraphStream, count: number): Promise<KeyedGraph[]> {
  const graphs: KeyedGraph[] = [];
  try {
    for (let i = 0; i < count; i++) graphs.push(await stream.next());
    return graphs;
  } finally {
    await stream.close();
  }
}

describe('graphsInWorkers', () => {
  const cases: [string, string, GraphOptions, number][] = [
    ['demo model (3 shards), int4', demoDir, { weightFormat: 'int4' }, 2],
    ['qwen2 parity model, fp32, one worker', parityDir('qwen2-qkv-bias'), {}, 1],
    ['llama parity model, unfused, more workers than graphs', parityDir('llama-gqa'), { fuse: false }, 9],
  ];
  test.each(cases)('%s: every graph once, the same bytes as built in this thread', async (_, dir, options, workers) => {
    const config = configOf(dir);
    const count = graphLoadOrder(config.numLayers).length;
    const weights = openHfWeights(dir, config);
    const expected = await drain(graphsInThread(config, weights, options), count);
    weights.close();
    const got = await drain(graphsInWorkers(dir, config, options, workers), count);
    expect(expected.map((g) => g.key)).toEqual(graphLoadOrder(config.numLayers));
    const [a, b] = [byKey(got), byKey(expected)];
    expect(got.length).toBe(count);
    expect(a.size).toBe(count);
    for (const [key, bytes] of b) expect(a.get(key)?.equals(bytes), `graph ${key}`).toBe(true);
  });

  test('past the last graph and after close, next() rejects', async () => {
    const dir = parityDir('llama-gqa');
    const config = configOf(dir);
    const stream = graphsInWorkers(dir, config, {}, 2);
    for (const _ of graphLoadOrder(config.numLayers)) await stream.next();
    await expect(stream.next()).rejects.toThrow(RangeError);
    const stopped = graphsInWorkers(dir, config, {}, 2);
    await stopped.next();
    await stopped.close();
    await expect(stopped.next()).rejects.toThrow(DisposedError);
  });
});

describe('loadModel with load workers', () => {
  test('the model decodes the same logits as one built in this thread', async () => {
    const ids = Int32Array.from([1, 17, 42, 99, 5]);
    const logits: Float32Array[] = [];
    for (const loadWorkers of [0, 3]) {
      const model = await loadModel(demoDir, { loadWorkers, weightFormat: 'int8' });
      try {
        const session = model.createSession();
        await session.prefill(ids);
        logits.push(await session.decodeStep(7));
      } finally {
        await model.dispose();
      }
    }
    expect(logits[1]).toEqual(logits[0]);
  });

  test.each([-1, 1.5, Number.NaN])('loadWorkers %s is a RangeError', async (loadWorkers) => {
    await expect(loadModel(demoDir, { loadWorkers })).rejects.toThrow(RangeError);
  });
});
