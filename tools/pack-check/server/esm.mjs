// The server from its tarball: start it on the embedded demo model (a free port, a store folder of its own), then
// a cached document and a completion that continues it, over plain HTTP; stop it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '@semanticache/server';

const store = fs.mkdtempSync(path.join(os.tmpdir(), 'pack-check-server-'));
const server = await startServer({ port: 0, store, logLevel: 'silent' });
try {
  const post = async (route, body) => {
    const res = await fetch(`${server.url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    assert.equal(res.status, 200, JSON.stringify(json));
    return json;
  };
  const models = await (await fetch(`${server.url}/v1/models`)).json();
  const model = models.data[0].id;
  const cache = await post('/v1/caches', {
    model,
    prompt: 'The old lighthouse keeper climbed the stairs. '.repeat(20),
  });
  assert.ok(cache.entries < cache.tokens, JSON.stringify(cache));
  const completion = await post('/v1/completions', {
    model,
    prompt: ' At the top he',
    cache_id: cache.id,
    max_tokens: 6,
    temperature: 0,
  });
  assert.ok(completion.usage.completion_tokens > 0);
  console.log(`cache ${cache.tokens} tokens → ${cache.entries} entries; ${JSON.stringify(completion.choices[0].text)}`);
} finally {
  await server.close();
  fs.rmSync(store, { recursive: true, force: true });
}
