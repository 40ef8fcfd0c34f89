// `pnpm bench` (in apps/server): load figures of semanticache-server on the demo model, loopback only, bounded in time.
//  1. A cached ~8K-token document: time to first token of a question that names its cache_id vs sending the whole
//     document with the question each time (same policy and budget).
//  2. `--clients` concurrent streaming clients (official openai SDK) for `--duration` seconds: errors, 429s, p50/p99
//     time to first token and inter-token latency (gaps between SSE chunks), aggregate tokens/s, server RSS.
//  3. The same generations in-process (the server's own generation code on a WorkerPool, no HTTP): tokens/s, before
//     and after phase 2, while no server runs; the ratio HTTP+SSE / in-process.
// Options: --duration S (default 60), --clients N (8), --max-tokens N (64), --questions N (5), --doc-tokens N (8000),
// --load-only (phase 2 alone: the soak), --out FILE (JSON).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { demoModelDir } from '@semanticache/model-demo';
import { HfTextTokenizer } from '@semanticache/runtime';
import OpenAI, { APIError } from 'openai';
import { generate } from '../src/generation.js';
import { DEFAULTS } from '../src/options.js';
import { WorkerPool } from '../src/pool.js';
import { ResidentDocuments } from '../src/resident.js';
import { spawnServer, tempDir } from '../src/test-support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    clients: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '64' },
    questions: { type: 'string', default: '5' },
    'doc-tokens': { type: 'string', default: '8000' },
    out: { type: 'string' },
    'load-only': { type: 'boolean', default: false },
  },
});
const DURATION_S = Number(values.duration);
const CLIENTS = Number(values.clients);
const MAX_TOKENS = Number(values['max-tokens']);
const QUESTIONS = Number(values.questions);
const DOC_TOKENS = Number(values['doc-tokens']);
const MODEL = 'semanticache-demo';
const POLICY = { policy: 'semanticache', ratio: 0.75 };

const corpus = readFileSync(path.join(here, '../../../fixtures/corpus/val-slice.txt'), 'utf8');
const tokenizer = HfTextTokenizer.fromFiles(path.join(demoModelDir, 'tokenizer.json'));
const log = (line: string) => process.stderr.write(`${line}\n`);

/** The longest prefix of the corpus (at a line break) with at most `tokens` tokens. */
function documentOf(tokens: number): string {
  let lo = 0;
  let hi = corpus.length;
  while (hi - lo > 200) {
    const mid = (lo + hi) >> 1;
    if (tokenizer.encode(corpus.slice(0, mid)).length <= tokens) lo = mid;
    else hi = mid;
  }
  const cut = corpus.lastIndexOf('\n', lo);
  return corpus.slice(0, cut > 0 ? cut : lo);
}

/** Short prompts from the corpus, so the clients do not all send the same one. */
const prompts = corpus
  .split(/\n\s*\n/)
  .map((p) => p.replace(/\s+/g, ' ').trim())
  .filter((p) => p.length > 80)
  .slice(100, 164)
  .map((p) => p.slice(0, 200));

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const median = (xs: number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function rssOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /semanticache_process_process_resident_memory_bytes (\d+)/.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** Streams one completion; returns its time to first token and its chunk gaps (ms). */
async function timedStream(client: OpenAI, body: Record<string, unknown>) {
  const t0 = performance.now();
  const stream = await client.completions.create({
    ...body,
    stream: true,
    stream_options: { include_usage: true },
  } as OpenAI.CompletionCreateParamsStreaming);
  let first: number | undefined;
  let last = 0;
  const gaps: number[] = [];
  let tokens = 0;
  for await (const chunk of stream) {
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
    if (!chunk.choices[0]?.text) continue;
    const now = performance.now();
    if (first === undefined) first = now - t0;
    else gaps.push(now - last);
    last = now;
  }
  return { ttft: first ?? Number.NaN, gaps, tokens };
}

// ------------------------------------------------------------------------------------------------------- phase 3

async function inProcessTokensPerSecond(seconds: number): Promise<number> {
  const pool = await WorkerPool.start(demoModelDir, { workers: 1, maxQueue: 1 });
  const ids = prompts.map((p) => tokenizer.encode(p));
  const controller = new AbortController();
  const noResidents = new ResidentDocuments(0);
  let tokens = 0;
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < seconds * 1000; i++) {
    const result = await generate(pool, noResidents, {
      ids: ids[i % ids.length],
      policy: { name: 'semanticache', budget: { ratio: POLICY.ratio } },
      kvDtype: DEFAULTS.kvDtype, // what the server under load uses
      sampling: { maxTokens: MAX_TOKENS, temperature: 0.8, topP: 1, seed: i + 1, stop: [] },
      signal: controller.signal,
      onText: () => {},
    });
    tokens += result.completionTokens;
  }
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  return tokens / elapsed;
}

// ------------------------------------------------------------------------------------------------------- phase 1

async function cachedDocument(client: OpenAI) {
  const doc = documentOf(DOC_TOKENS);
  const question = '\n\nQuestion: What happened next?\nAnswer:';
  const t0 = performance.now();
  const cache = (await client.post('/caches', { body: { model: MODEL, prompt: doc, semanticache: POLICY } })) as {
    id: string;
    tokens: number;
    entries: number;
    bytes: { full: number; compressed: number };
    snapshot_bytes: number;
    prefill_ms: number;
    compress_ms: number;
  };
  const createMs = performance.now() - t0;
  const viaCache: number[] = [];
  for (let i = 0; i < QUESTIONS; i++) {
    const r = await timedStream(client, {
      model: MODEL,
      prompt: question,
      max_tokens: 8,
      temperature: 0,
      cache_id: cache.id,
    });
    viaCache.push(r.ttft);
  }
  const resent: number[] = [];
  for (let i = 0; i < Math.max(2, Math.ceil(QUESTIONS / 2)); i++) {
    const r = await timedStream(client, {
      model: MODEL,
      prompt: doc + question,
      max_tokens: 8,
      temperature: 0,
      semanticache: POLICY,
    });
    resent.push(r.ttft);
  }
  return {
    documentTokens: cache.tokens,
    cache: {
      createMs: round(createMs),
      prefillMs: cache.prefill_ms,
      compressMs: cache.compress_ms,
      entriesPerHead: cache.entries,
      kvBytesFull: cache.bytes.full,
      kvBytesCompressed: cache.bytes.compressed,
      snapshotBytes: cache.snapshot_bytes,
    },
    ttftCachedMs: viaCache.map((x) => round(x)),
    ttftResentMs: resent.map((x) => round(x)),
    medianCachedMs: round(median(viaCache)),
    medianResentMs: round(median(resent)),
    speedup: round(median(resent) / median(viaCache), 1),
  };
}

// ------------------------------------------------------------------------------------------------------- phase 2

async function load(url: string) {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
  // warm-up: one generation, so RSS at start is the loaded server's
  await timedStream(client, { model: MODEL, prompt: prompts[0], max_tokens: 8 });
  const rssStart = await rssOf(url);
  const ttfts: number[] = [];
  const gaps: number[] = [];
  let tokens = 0;
  let requests = 0;
  let refused = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + DURATION_S * 1000;
  const rssSamples: { s: number; rss: number }[] = [];
  const sampler = setInterval(async () => {
    rssSamples.push({ s: round((performance.now() - t0) / 1000, 0), rss: await rssOf(url) });
  }, 10_000);
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = c; performance.now() < deadline; i += CLIENTS) {
        try {
          const r = await timedStream(client, {
            model: MODEL,
            prompt: prompts[i % prompts.length],
            max_tokens: MAX_TOKENS,
            temperature: 0.8,
            seed: i,
          });
          ttfts.push(r.ttft);
          gaps.push(...r.gaps);
          tokens += r.tokens;
          requests++;
        } catch (err) {
          if (err instanceof APIError && err.status === 429) {
            refused++;
            await new Promise((r) => setTimeout(r, 1000 * Number(err.headers?.get('retry-after') ?? 1)));
          } else {
            errors++;
            log(`error: ${(err as Error).message}`);
          }
        }
      }
    }),
  );
  clearInterval(sampler);
  const elapsed = (performance.now() - t0) / 1000;
  const rssEnd = await rssOf(url);
  ttfts.sort((a, b) => a - b);
  gaps.sort((a, b) => a - b);
  return {
    clients: CLIENTS,
    seconds: round(elapsed),
    requests,
    errors,
    refused429: refused,
    tokens,
    tokensPerSecond: round(tokens / elapsed),
    ttftMs: { p50: round(quantile(ttfts, 0.5)), p99: round(quantile(ttfts, 0.99)) },
    interTokenMs: { p50: round(quantile(gaps, 0.5), 2), p99: round(quantile(gaps, 0.99), 2) },
    rssMiB: {
      start: round(rssStart / 2 ** 20),
      end: round(rssEnd / 2 ** 20),
      samples: rssSamples.map((s) => ({ s: s.s, mib: round(s.rss / 2 ** 20) })),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------- main

const LOAD_ONLY = values['load-only'] === true;
const inProcessSeconds = Math.min(20, DURATION_S);
if (!LOAD_ONLY) log(`in-process (before): ${inProcessSeconds} s`);
const before = LOAD_ONLY ? Number.NaN : await inProcessTokensPerSecond(inProcessSeconds);
if (!LOAD_ONLY) log(`  ${round(before)} tokens/s`);
const server = await spawnServer([
  '--store',
  tempDir('sc-bench-'),
  '--max-queue',
  String(CLIENTS),
  '--log-level',
  'warn',
]);
let cached: Awaited<ReturnType<typeof cachedDocument>> | undefined;
let loaded: Awaited<ReturnType<typeof load>>;
try {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 300_000 });
  if (!LOAD_ONLY) {
    log(`cached ${DOC_TOKENS}-token document vs re-sending it (${QUESTIONS} questions)`);
    cached = await cachedDocument(client);
    log(JSON.stringify(cached));
  }
  log(`${CLIENTS} streaming clients for ${DURATION_S} s`);
  loaded = await load(server.url);
  log(JSON.stringify(loaded));
} finally {
  await server.stop('SIGTERM');
}
if (!LOAD_ONLY) log(`in-process (after): ${inProcessSeconds} s`);
const after = LOAD_ONLY ? Number.NaN : await inProcessTokensPerSecond(inProcessSeconds);
const inProcess = (before + after) / 2;
const result = {
  date: new Date().toISOString(),
  cachedDocument: cached ?? null,
  load: loaded,
  inProcessTokensPerSecond: { before: round(before), after: round(after) },
  httpVsInProcess: round(loaded.tokensPerSecond / inProcess, 3),
};
const json = JSON.stringify(result, null, 2);
process.stdout.write(`${json}\n`);
if (values.out) writeFileSync(values.out, `${json}\n`);
