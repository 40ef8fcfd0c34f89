// The server as its users run it: separate processes, a real redis-server, restarts and SIGTERM.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apiError,
  type RedisProcess,
  type ServerProcess,
  spawnServer,
  startRedis,
  statusOf,
  tempDir,
} from './test-support.js';

const MODEL = 'semanticache-demo';
const DOC =
  'The lighthouse keeper kept a ledger of every ship that passed. In March the ledger listed the Aurora, the ' +
  'Bellwether and the Calypso. The keeper wrote that the Calypso carried salt and that it anchored for two nights.';

const clientOf = (server: ServerProcess) =>
  new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

describe('two replicas sharing one Redis', () => {
  let redis: RedisProcess;
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    redis = await startRedis();
    const args = ['--store', redis.url, '--log-level', 'warn'];
    [a, b] = await Promise.all([spawnServer(args), spawnServer([...args, '--shutdown-timeout', '300'])]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL'), redis?.stop()]);
  });

  it('a cache made on replica A is answered by replica B, exactly as A answers it', async () => {
    const cache = (await clientOf(a).post('/caches', {
      body: { model: MODEL, prompt: DOC, semanticache: { policy: 'semanticache', ratio: 0.5 } },
    })) as { id: string; tokens: number };
    const question = {
      model: MODEL,
      prompt: ' The ship that carried salt was the',
      max_tokens: 4,
      temperature: 0,
      cache_id: cache.id,
    } as OpenAI.CompletionCreateParamsNonStreaming;
    const onB = await clientOf(b).completions.create(question);
    const onA = await clientOf(a).completions.create(question);
    expect(onB.choices[0].text).toBe(onA.choices[0].text);
    expect(onB.usage?.prompt_tokens_details?.cached_tokens).toBe(cache.tokens);
    expect(await clientOf(b).get(`/caches/${cache.id}`)).toMatchObject({ id: cache.id, tokens: cache.tokens });
    await clientOf(b).delete(`/caches/${cache.id}`);
    expect(await statusOf(clientOf(a).completions.create(question))).toBe(404);
  });

  it('Redis going away: 503 on cache calls, plain completions still work, and recovery when it returns', async () => {
    const made = (await clientOf(a).post('/caches', { body: { model: MODEL, prompt: DOC } })) as { id: string };
    await redis.stop();
    const err = await apiError(clientOf(a).post('/caches', { body: { model: MODEL, prompt: DOC } }));
    expect(err.status).toBe(503);
    expect(err.code).toBe('cache_store_unavailable');
    const question = { model: MODEL, prompt: ' Then', max_tokens: 2, cache_id: made.id } as never;
    expect(await statusOf(clientOf(b).completions.create(question))).toBe(503);
    const plain = await clientOf(b).completions.create({ model: MODEL, prompt: 'The keeper', max_tokens: 2 });
    expect(plain.choices[0].text.length).toBeGreaterThan(0);
    expect(await (await fetch(`${a.url}/health`)).json()).toMatchObject({ status: 'degraded', store: { ok: false } });

    redis = await startRedis(redis.port); // same port, empty (no persistence)
    let status: number | undefined;
    for (let i = 0; i < 40 && status !== 200; i++) {
      status = await statusOf(clientOf(a).post('/caches', { body: { model: MODEL, prompt: DOC } }));
      if (status !== 200) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(200);
    // the old entry died with that Redis: a clean 404, not an error
    expect(await statusOf(clientOf(b).completions.create(question))).toBe(404);
  });

  it('SIGTERM: in-flight streams finish, then exit 0; past the deadline they are cancelled with an error event', async () => {
    const stream = await clientOf(a).completions.create({
      model: MODEL,
      prompt: 'It was',
      max_tokens: 48,
      stream: true,
    });
    const chunks: OpenAI.Completion[] = [];
    const reading = (async () => {
      for await (const chunk of stream) chunks.push(chunk);
    })();
    while (chunks.length === 0) await new Promise((r) => setTimeout(r, 10));
    const exitA = a.stop('SIGTERM');
    await reading;
    expect(chunks.at(-1)?.choices[0].finish_reason).toBe('length');
    expect(await exitA).toBe(0);

    // B waits 300 ms: a 4000-token stream is cancelled and told why
    const long = await clientOf(b).completions.create({
      model: MODEL,
      prompt: 'It was',
      max_tokens: 4000,
      stream: true,
    });
    let seen = 0;
    const failure = apiError(
      (async () => {
        for await (const _ of long) seen++;
      })(),
    );
    while (seen === 0) await new Promise((r) => setTimeout(r, 10));
    const exitB = b.stop('SIGTERM');
    const err = await failure;
    expect(String(err.message)).toMatch(/shutting down/);
    expect(await exitB).toBe(0);
  });
});

describe('the disk store', () => {
  it('keeps cached documents across a restart', async () => {
    const dir = tempDir('sc-restart-');
    const first = await spawnServer(['--store', dir, '--log-level', 'warn']);
    const cache = (await clientOf(first).post('/caches', { body: { model: MODEL, prompt: DOC } })) as { id: string };
    const question = { model: MODEL, prompt: ' The', max_tokens: 3, temperature: 0, cache_id: cache.id } as never;
    const before = (await clientOf(first).completions.create(question)) as OpenAI.Completion;
    expect(await first.stop('SIGTERM')).toBe(0);
    const second = await spawnServer(['--store', dir, '--log-level', 'warn']);
    try {
      const after = (await clientOf(second).completions.create(question)) as OpenAI.Completion;
      expect(after.choices[0].text).toBe(before.choices[0].text);
    } finally {
      await second.stop('SIGKILL');
    }
  });
});
