import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from './server.js';
import { apiError, statusOf, tempDir } from './test-support.js';

const MODEL = 'semanticache-demo';
let server: RunningServer;
const as = (apiKey: string) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries: 0 });

beforeAll(async () => {
  server = await startServer({ port: 0, store: tempDir('sc-auth-'), apiKeys: ['key-a', 'key-b'], logLevel: 'silent' });
});
afterAll(async () => {
  await server?.close(1000);
});

describe('API keys', () => {
  it('answers 401 without a valid Bearer token, and serves any configured key', async () => {
    const err = await apiError(as('wrong').models.list());
    expect(err.status).toBe(401);
    expect(err.code).toBe('invalid_api_key');
    const noHeader = await fetch(`${server.url}/v1/models`);
    expect(noHeader.status).toBe(401);
    expect(((await noHeader.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    expect((await as('key-a').models.list()).data).toHaveLength(1);
    expect((await as('key-b').models.list()).data).toHaveLength(1);
    // health and metrics stay open for probes and scrapers
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('a cached document belongs to the key that made it: another key gets 404, never the content', async () => {
    const cache = (await as('key-a').post('/caches', { body: { model: MODEL, prompt: 'Private notes.' } })) as {
      id: string;
    };
    const question = { model: MODEL, prompt: ' Next', max_tokens: 1, cache_id: cache.id } as never;
    expect(await statusOf(as('key-a').completions.create(question))).toBe(200);
    expect(await statusOf(as('key-b').completions.create(question))).toBe(404);
    expect(await statusOf(as('key-b').get(`/caches/${cache.id}`))).toBe(404);
    expect(await statusOf(as('key-b').delete(`/caches/${cache.id}`))).toBe(404);
    expect(await statusOf(as('key-a').get(`/caches/${cache.id}`))).toBe(200);
  });
});
