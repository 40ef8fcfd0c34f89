import { readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoModelDir } from '@semanticache/model-demo';
import { HfTextTokenizer } from '@semanticache/runtime';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHAT_TEMPLATE } from './chat-template.js';
import { type RunningServer, startServer } from './server.js';
import { apiError, tempDir } from './test-support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODEL = 'semanticache-demo';
const DOC = readFileSync(path.join(here, '../../../fixtures/corpus/val-slice.txt'), 'utf8').slice(0, 2500);
const tokenizer = HfTextTokenizer.fromFiles(path.join(demoModelDir, 'tokenizer.json'));

interface CacheCard {
  id: string;
  kind: string;
  tokens: number;
  entries: number;
  bytes: { full: number; compressed: number };
}
interface Extension {
  policy: unknown;
  cache_id: string | null;
  kv: { entries: number; bytes: { full: number; held: number } };
  compress_ms: number;
}

let server: RunningServer;
let client: OpenAI;
const storeDir = tempDir('sc-api-store-');

/** For the bodies the SDK cannot send (broken JSON, bad bytes): a raw POST. */
async function rawPost(
  route: string,
  body: string | Buffer,
): Promise<{ status: number; json: { error: Record<string, unknown> } }> {
  const res = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, json: (await res.json()) as { error: Record<string, unknown> } };
}

beforeAll(async () => {
  server = await startServer({
    port: 0,
    store: storeDir,
    workers: 1,
    maxQueue: 1,
    bodyLimit: 256 * 1024,
    logLevel: 'silent',
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close(1000);
});

describe('OpenAI API through the official SDK', () => {
  it('lists the model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
  });

  it('completes a prompt, streamed or not, with usage and finish reasons', async () => {
    const params = { model: MODEL, prompt: 'The kernel scheduler decides', max_tokens: 6, temperature: 0 };
    const full = await client.completions.create(params);
    expect(full.choices[0].finish_reason).toBe('length');
    expect(full.usage?.completion_tokens).toBe(6);
    expect(full.usage?.prompt_tokens).toBe(tokenizer.encode(params.prompt).length);
    expect(full.choices[0].text.length).toBeGreaterThan(0);

    const stream = await client.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let reason: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        reason = c.finish_reason ?? reason;
      }
    }
    expect(text).toBe(full.choices[0].text);
    expect(reason).toBe('length');
    expect(usage?.completion_tokens).toBe(6);

    // a stop string inside the greedy continuation ends it there, with finish_reason 'stop'
    const words = full.choices[0].text.trim().split(/\s+/);
    const stopWord = words[Math.min(1, words.length - 1)];
    const stopped = await client.completions.create({ ...params, stop: [stopWord] });
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(stopped.choices[0].text).toBe(full.choices[0].text.slice(0, full.choices[0].text.indexOf(stopWord)));
  });

  it('samples reproducibly with a seed, and honours temperature and top_p', async () => {
    const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: 8, temperature: 1.2, top_p: 0.9, seed: 42 };
    const a = await client.completions.create(params);
    const b = await client.completions.create(params);
    expect(a.choices[0].text).toBe(b.choices[0].text);
  });

  it('streams a chat through the default template (the demo model has none)', async () => {
    const messages = [
      { role: 'system' as const, content: 'Answer briefly.' },
      { role: 'user' as const, content: 'What is a kernel?' },
    ];
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 5,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const roles: string[] = [];
    let content = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let reason: string | null = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.role) roles.push(c.delta.role);
        content += c.delta.content ?? '';
        reason = c.finish_reason ?? reason;
      }
    }
    expect(roles).toEqual(['assistant']);
    expect(reason).toBe('length');
    expect(usage?.completion_tokens).toBe(5);
    const rendered = 'System: Answer briefly.\n\nUser: What is a kernel?\n\nAssistant:';
    expect(DEFAULT_CHAT_TEMPLATE).toContain('Assistant:');
    expect(usage?.prompt_tokens).toBe(tokenizer.encode(rendered).length);
    const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 5, temperature: 0 });
    expect(whole.choices[0].message.content).toBe(content);
  });

  it('compresses per request with the semanticache field and reports the cache', async () => {
    const res = (await client.completions.create({
      model: MODEL,
      prompt: DOC,
      max_tokens: 2,
      temperature: 0,
      semanticache: { policy: 'snapkv', ratio: 0.5 },
    } as OpenAI.CompletionCreateParamsNonStreaming)) as OpenAI.Completion & { semanticache: Extension };
    expect(res.semanticache.policy).toEqual({ name: 'snapkv', budget: { ratio: 0.5 } });
    expect(res.semanticache.kv.bytes.held).toBeLessThan(res.semanticache.kv.bytes.full * 0.6);
    expect(res.semanticache.compress_ms).toBeGreaterThan(0);
  });
});

describe('cached documents', () => {
  it('prefills and compresses a document once; questions continue from it; delete removes it', async () => {
    const cache = (await client.post('/caches', {
      body: { model: MODEL, prompt: DOC, semanticache: { policy: 'semanticache', ratio: 0.5 } },
    })) as CacheCard;
    const docTokens = tokenizer.encode(DOC).length;
    expect(cache.id).toMatch(/^cache_[0-9a-f]{32}$/);
    expect(cache.tokens).toBe(docTokens);
    expect(cache.entries).toBeLessThanOrEqual(Math.ceil(docTokens * 0.5));
    expect(cache.bytes.compressed).toBeLessThan(cache.bytes.full);
    expect(await client.get(`/caches/${cache.id}`)).toMatchObject({ id: cache.id, tokens: docTokens });

    const question = '\nQuestion: who spoke first?\nAnswer:';
    const answer = (await client.completions.create({
      model: MODEL,
      prompt: question,
      max_tokens: 4,
      temperature: 0,
      cache_id: cache.id,
    } as OpenAI.CompletionCreateParamsNonStreaming)) as OpenAI.Completion & { semanticache: Extension };
    const questionTokens = tokenizer.encode(question, { addSpecialTokens: false }).length;
    expect(answer.usage?.prompt_tokens).toBe(docTokens + questionTokens);
    expect(answer.usage?.prompt_tokens_details?.cached_tokens).toBe(docTokens);
    expect(answer.semanticache.cache_id).toBe(cache.id);
    // the question is appended raw to the compressed document: entries grow by the new tokens only
    expect(answer.semanticache.kv.entries).toBeLessThan(docTokens * 0.5 + questionTokens + 8);

    expect(await client.delete(`/caches/${cache.id}`)).toMatchObject({ id: cache.id, deleted: true });
    const gone = await apiError(
      client.completions.create({
        model: MODEL,
        prompt: question,
        max_tokens: 2,
        cache_id: cache.id,
      } as OpenAI.CompletionCreateParamsNonStreaming),
    );
    expect(gone.status).toBe(404);
    expect(gone.code).toBe('cache_not_found');
  });

  it('continues a full-policy cache exactly as if the whole prompt were sent', async () => {
    const cache = (await client.post('/caches', {
      body: { model: MODEL, prompt: DOC.slice(0, 800), semanticache: { policy: 'full' } },
    })) as CacheCard;
    const question = ' And then';
    const viaCache = await client.completions.create({
      model: MODEL,
      prompt: question,
      max_tokens: 6,
      temperature: 0,
      cache_id: cache.id,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    const ids = [...tokenizer.encode(DOC.slice(0, 800)), ...tokenizer.encode(question, { addSpecialTokens: false })];
    const whole = await client.completions.create({
      model: MODEL,
      prompt: ids,
      max_tokens: 6,
      temperature: 0,
      semanticache: { policy: 'full' },
    } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(viaCache.choices[0].text).toBe(whole.choices[0].text);
  });

  it('continues a chat cache with new messages through the template', async () => {
    const cache = (await client.post('/caches', {
      body: { model: MODEL, messages: [{ role: 'system', content: DOC.slice(0, 600) }] },
    })) as CacheCard;
    expect(cache.kind).toBe('messages');
    const reply = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Summarise.' }],
      max_tokens: 3,
      cache_id: cache.id,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(reply.usage?.prompt_tokens).toBe(
      cache.tokens + tokenizer.encode('User: Summarise.\n\nAssistant:', { addSpecialTokens: false }).length,
    );
    const wrongRoute = await apiError(
      client.completions.create({
        model: MODEL,
        prompt: 'x',
        max_tokens: 1,
        cache_id: cache.id,
      } as OpenAI.CompletionCreateParamsNonStreaming),
    );
    expect(wrongRoute.status).toBe(400);
    expect(wrongRoute.message).toMatch(/chat\/completions/);
  });

  it('keeps a document restored in its worker: later questions read no snapshot; a delete ends it', async () => {
    const cache = (await client.post('/caches', { body: { model: MODEL, prompt: DOC.slice(0, 1200) } })) as CacheCard;
    const ask = () =>
      client.completions.create({
        model: MODEL,
        prompt: '\nQuestion: what happened?\nAnswer:',
        max_tokens: 5,
        temperature: 0,
        cache_id: cache.id,
      } as OpenAI.CompletionCreateParamsNonStreaming);
    const first = await ask();
    // without its snapshot in the store, only the worker's resident copy can answer, and answers the same
    rmSync(path.join(storeDir, `${cache.id}.bin`));
    const second = await ask();
    expect(second.choices[0].text).toBe(first.choices[0].text);
    expect(await client.delete(`/caches/${cache.id}`)).toMatchObject({ deleted: true });
    expect((await apiError(ask())).status).toBe(404);
  });

  it('refuses a damaged snapshot with a clear error instead of loading it', async () => {
    const cache = (await client.post('/caches', { body: { model: MODEL, prompt: 'A short document.' } })) as CacheCard;
    const file = path.join(storeDir, `${cache.id}.bin`);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff; // same length, one flipped byte: only the checksum can tell
    writeFileSync(file, bytes);
    const err = await apiError(
      client.completions.create({
        model: MODEL,
        prompt: ' more',
        max_tokens: 1,
        cache_id: cache.id,
      } as OpenAI.CompletionCreateParamsNonStreaming),
    );
    expect(err.status).toBe(500);
    expect(err.code).toBe('cache_corrupted');
    expect(err.message).toMatch(/damaged.*checksum/);
  });
});

describe('bad input answers an OpenAI error body', () => {
  const expectError = async (p: Promise<unknown>, status: number, param: string | null, message: RegExp) => {
    const err = await apiError(p);
    expect(err.status).toBe(status);
    expect(err.type).toBeTypeOf('string');
    expect(err.param ?? null).toBe(param);
    expect(err.message).toMatch(message);
  };
  const complete = (body: Record<string, unknown>) =>
    client.completions.create({ model: MODEL, prompt: 'Hi', max_tokens: 1, ...body } as never);

  it('malformed JSON, empty body and invalid UTF-8', async () => {
    const broken = await rawPost('/v1/completions', '{"model": "semanticache-demo", "prompt": ');
    expect(broken.status).toBe(400);
    expect(broken.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' });
    expect(String(broken.json.error.message)).toMatch(/not valid JSON/);
    const bytes = Buffer.concat([
      Buffer.from('{"model":"semanticache-demo","prompt":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const utf8 = await rawPost('/v1/completions', bytes);
    expect(utf8.status).toBe(400);
    expect(utf8.json.error).toMatchObject({ code: 'invalid_encoding', param: null });
    expect((await rawPost('/v1/chat/completions', '')).status).toBe(400);
  });

  it('fields of the wrong type, and missing model / prompt / messages', async () => {
    await expectError(complete({ max_tokens: 'ten' }), 400, 'max_tokens', /max_tokens/);
    await expectError(complete({ temperature: '0.5' }), 400, 'temperature', /temperature/);
    await expectError(complete({ prompt: [true] }), 400, 'prompt', /prompt/);
    await expectError(complete({ semanticache: { policy: 3 } }), 400, 'semanticache.policy', /policy/);
    await expectError(complete({ model: undefined }), 400, 'model', /missing required field 'model'/);
    await expectError(complete({ prompt: undefined }), 400, 'prompt', /missing required field 'prompt'/);
    await expectError(
      client.chat.completions.create({ model: MODEL } as never),
      400,
      'messages',
      /missing required field 'messages'/,
    );
    await expectError(
      client.chat.completions.create({ model: MODEL, messages: [] } as never),
      400,
      'messages',
      /messages/,
    );
    await expectError(complete({ model: 'gpt-4o' }), 404, 'model', /does not exist; this server serves/);
    await expectError(complete({ n: 2 }), 400, 'n', /'n' = 2 .*not supported/);
    await expectError(complete({ prompt: '' }), 400, 'prompt', /empty/);
  });

  it('a prompt longer than the context, and max_tokens out of range', async () => {
    const long = 'word '.repeat(9000);
    await expectError(complete({ prompt: long }), 400, 'prompt', /maximum context length is 8192 tokens/);
    await expectError(complete({ max_tokens: 0 }), 400, 'max_tokens', />= 1/);
    await expectError(complete({ max_tokens: -5 }), 400, 'max_tokens', />= 1/);
    await expectError(complete({ max_tokens: 100_000 }), 400, 'max_tokens', /8192 tokens; the request needs/);
  });

  it('unknown policy, ratio outside [0, 1), both budgets', async () => {
    await expectError(
      complete({ semanticache: { policy: 'zip' } }),
      400,
      'semanticache.policy',
      /unknown policy 'zip'/,
    );
    await expectError(complete({ semanticache: { ratio: 1 } }), 400, 'semanticache.ratio', /\[0, 1\)/);
    await expectError(complete({ semanticache: { ratio: -0.1 } }), 400, 'semanticache.ratio', /\[0, 1\)/);
    await expectError(complete({ semanticache: { ratio: 0.5, max_entries: 9 } }), 400, 'semanticache', /not both/);
    await expectError(complete({ semanticache: { ratio: 0.5, extra: 1 } }), 400, 'semanticache', /additional/);
  });

  it('unknown cache ids: 404 on completions, GET and DELETE', async () => {
    await expectError(complete({ cache_id: 'cache_0123456789abcdef0123456789abcdef' }), 404, 'cache_id', /no cache/);
    await expectError(complete({ cache_id: '../../etc/passwd' }), 404, 'cache_id', /no cache/);
    await expectError(client.get('/caches/cache_0123456789abcdef0123456789abcdef'), 404, 'id', /no cache/);
    await expectError(client.delete('/caches/nope'), 404, 'id', /no cache/);
    await expectError(
      client.post('/caches', { body: { model: MODEL } }),
      400,
      'prompt',
      /either 'prompt' or 'messages'/,
    );
  });

  it('a body over the size limit: 413', async () => {
    await expectError(complete({ prompt: 'x'.repeat(300 * 1024) }), 413, null, /size limit/);
  });
});

describe('capacity, disconnects, health and metrics', () => {
  it('queues one request, answers 429 with Retry-After past it, and frees the worker when a client disconnects', async () => {
    const long = { model: MODEL, prompt: 'It was', max_tokens: 4000, temperature: 1, stream: true as const };
    const first = await client.completions.create(long);
    const firstIter = first[Symbol.asyncIterator]();
    await firstIter.next(); // generating on the only worker
    // queued (max 1): its headers come back once it waits for the worker
    const secondStream = await client.completions.create(long);
    const refused = await apiError(client.completions.create({ ...long, max_tokens: 1 }));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.code).toBe('queue_full');

    first.controller.abort(); // disconnect: the worker must move on to the queued request at once
    const secondIter = secondStream[Symbol.asyncIterator]();
    expect((await secondIter.next()).done).toBe(false);
    secondStream.controller.abort();
    // both generations stopped: the worker is idle again, long before 4000 tokens
    for (let i = 0; i < 100; i++) {
      const health = (await (await fetch(`${server.url}/health`)).json()) as { busy: number; queued: number };
      if (health.busy === 0 && health.queued === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const health = (await (await fetch(`${server.url}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', busy: 0, queued: 0, store: { kind: 'disk', ok: true } });
    const after = await client.completions.create({ model: MODEL, prompt: 'Hi', max_tokens: 1 });
    expect(after.choices).toHaveLength(1);
  });

  it('exports Prometheus metrics', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/semanticache_requests_total\{route="\/v1\/completions",status="200"\} \d+/);
    expect(text).toMatch(/semanticache_requests_total\{route="\/v1\/completions",status="429"\} 1/);
    // each request once, streamed or not: two chats and one chat continuing a cache
    expect(text).toMatch(/semanticache_requests_total\{route="\/v1\/chat\/completions",status="200"\} 3\n/);
    expect(text).toMatch(/semanticache_generated_tokens_total \d+/);
    expect(text).toMatch(/semanticache_time_to_first_token_seconds_count [1-9]/);
    expect(text).toMatch(/semanticache_compression_seconds_count [1-9]/);
    expect(text).toMatch(/semanticache_kv_bytes\{kind="full"\} \d+/);
    expect(text).toMatch(/semanticache_kv_bytes\{kind="held"\} \d+/);
    expect(text).toMatch(/semanticache_queue_depth 0/);
  });
});

describe('a checkpoint with its own chat template', () => {
  let templated: RunningServer;
  beforeAll(async () => {
    const dir = tempDir('sc-qwen-template-');
    const config = JSON.parse(
      readFileSync(path.join(here, '..', 'fixtures', 'qwen3-chat', 'tokenizer_config.json'), 'utf8'),
    );
    // the demo weights and tokenizer, with Qwen3's ChatML template next to them
    for (const f of readdirSync(demoModelDir)) symlinkSync(path.join(demoModelDir, f), path.join(dir, f));
    writeFileSync(path.join(dir, 'chat_template.jinja'), config.chat_template);
    templated = await startServer({
      port: 0,
      model: dir,
      modelName: 'demo-chatml',
      store: tempDir('sc-api-store-'),
      logLevel: 'silent',
    });
  });
  afterAll(async () => {
    await templated?.close(1000);
  });

  it('renders the prompt with it', async () => {
    const c = new OpenAI({ baseURL: `${templated.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const res = await c.chat.completions.create({
      model: 'demo-chatml',
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 2,
    });
    const rendered = '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n';
    expect(res.usage?.prompt_tokens).toBe(tokenizer.encode(rendered, { addSpecialTokens: false }).length);
  });
});
