import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SnapshotError } from '@semanticache/kv-cache';
import { describe, expect, test } from 'vitest';
import { ModelLoadError } from './errors.js';
import { loadModel } from './model.js';
import { demoDir, repoRoot } from './test-support.js';
import { WorkerModel } from './worker-model.js';

const corpus = readFileSync(path.join(repoRoot, 'packages', 'runtime', 'bench', 'corpus.txt'), 'utf8');

describe('WorkerModel', () => {
  test('generates the same tokens as the in-thread model while the event loop keeps running', async () => {
    const prompt = corpus.slice(2000, 3000);
    const local = await loadModel(demoDir);
    const expected: number[] = [];
    for await (const ev of local.createSession().generate(prompt, { maxTokens: 16, temperature: 0 }))
      expected.push(ev.tokenId);
    await local.dispose();

    const model = await WorkerModel.load(demoDir);
    expect(model.config.numLayers).toBe(8);
    const session = await model.createSession();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const ids: number[] = [];
    let text = '';
    for await (const ev of session.generate(prompt, { maxTokens: 16, temperature: 0 })) {
      ids.push(ev.tokenId);
      text += ev.text;
    }
    clearInterval(timer);
    expect(ids).toEqual(expected);
    expect(text).toBe(await model.decode(ids));
    expect(session.lastFinishReason).toBe(expected.length === 16 ? 'length' : 'eos');
    expect(ticks).toBeGreaterThan(5); // timers fired during generation
    expect((await session.stats()).position).toBe((await model.encode(prompt)).length + 15);

    // abort from the parent stops the worker's loop; the session stays usable
    const controller = new AbortController();
    let n = 0;
    for await (const _ of session.generate(' And then', {
      maxTokens: 200,
      temperature: 0,
      signal: controller.signal,
    })) {
      if (++n === 2) controller.abort();
    }
    expect(n).toBeLessThanOrEqual(3);
    expect(session.lastFinishReason).toBe('abort');
    const logits = await session.decodeStep(5);
    expect(logits.length).toBe(8192);
    // errors come back typed
    await expect(session.prefill([99999])).rejects.toThrow(RangeError);
    await model.dispose();
  });

  test("an abort stops a long prefill in the worker at its next block; a damaged snapshot's error keeps its type", async () => {
    const model = await WorkerModel.load(demoDir);
    try {
      const ids = await model.encode(corpus.slice(0, 4000));
      expect(ids.length).toBeGreaterThan(600);
      const session = await model.createSession({ prefillBlock: 64 });
      // aborted before it starts: the worker sees the abort while the first block runs
      const err = await session.prefill(ids, { signal: AbortSignal.abort() }).catch((e: Error) => e);
      expect((err as Error).name).toBe('AbortError');
      const { position } = await session.stats();
      expect(position).toBeGreaterThan(0);
      expect(position).toBeLessThan(ids.length);
      expect(position % 64).toBe(0);
      await session.prefill(ids.slice(position)); // the session goes on from there
      expect((await session.stats()).position).toBe(ids.length);
      // a fork continues exactly like its original, and neither disturbs the other
      const fork = await session.fork();
      const tokens = async (s: typeof session) => {
        const ids: number[] = [];
        for await (const ev of s.generate(' The', { maxTokens: 6, temperature: 0 })) ids.push(ev.tokenId);
        return ids;
      };
      const fromFork = await tokens(fork);
      expect(await tokens(session)).toEqual(fromFork);
      expect((await fork.stats()).position).toBe((await session.stats()).position);
      await fork.dispose();
      const damaged = await session.snapshot();
      damaged[damaged.length - 1] ^= 1;
      await expect(model.restoreSession(damaged)).rejects.toBeInstanceOf(SnapshotError);
    } finally {
      await model.dispose();
    }
  });

  test('load errors come back as ModelLoadError', async () => {
    await expect(WorkerModel.load(path.join(repoRoot, 'no-such-model'))).rejects.toThrow(ModelLoadError);
  });
});
