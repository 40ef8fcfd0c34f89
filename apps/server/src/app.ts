import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { CachePolicy, CacheStats, FinishReason } from '@semanticache/runtime';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ChatTemplate } from './chat-template.js';
import {
  ApiError,
  badRequest,
  CorruptSnapshotError,
  type ErrorBody,
  notFound,
  StoreUnavailableError,
} from './errors.js';
import { type GenerationResult, generate, prefillDocument, type Sampling } from './generation.js';
import type { ServerMetrics } from './metrics.js';
import { checkCompression, type ServerOptions } from './options.js';
import { QueueAbortError, QueueFullError, type WorkerPool } from './pool.js';
import { ResidentDocuments } from './resident.js';
import {
  type CacheRequest,
  type ChatRequest,
  type CompletionRequest,
  type CompressionField,
  cacheBody,
  cacheIdParams,
  chatBody,
  completionBody,
  type MessageInput,
  type SamplingFields,
} from './schemas.js';
import { CACHE_ID_PATTERN, type CacheMeta, type ChatMessage, type SnapshotStore } from './store.js';
import type { PromptTokenizer } from './tokenize.js';

export interface AppDeps {
  options: ServerOptions;
  pool: WorkerPool;
  store: SnapshotStore;
  tokenizer: PromptTokenizer;
  template: ChatTemplate;
  metrics: ServerMetrics;
}

/** A cached document a request continues: its meta, and how to read its snapshot. */
interface LoadedCache {
  meta: CacheMeta;
  load: () => Promise<Uint8Array>;
}

export interface App {
  app: FastifyInstance;
  /** cancels every running generation (the end of a graceful shutdown's grace period) */
  cancelAll(reason: string): void;
  /** generations running or queued now */
  readonly inFlight: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** sha-256 of the caller's API key; '' when the server has none */
    owner: string;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Where a cached document's continuation starts, and what it adds. */
interface Prepared {
  ids: number[];
  cachedTokens: number;
  cache?: LoadedCache;
  policy: CachePolicy;
  sampling: Sampling;
}

function finishReason(reason: FinishReason): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}

function meanEntries(stats: CacheStats): number {
  let sum = 0;
  for (const e of stats.entries) sum += e;
  return stats.entries.length === 0 ? 0 : Math.round(sum / stats.entries.length);
}

/** The body a validation error or any other failure answers with. */
function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof QueueFullError) {
    return new ApiError(429, err.message, 'rate_limit_error', null, 'queue_full', {
      'retry-after': String(err.retryAfterSeconds),
    });
  }
  if (err instanceof StoreUnavailableError) {
    return new ApiError(503, err.message, 'service_unavailable', null, 'cache_store_unavailable');
  }
  if (err instanceof CorruptSnapshotError) {
    return new ApiError(500, err.message, 'server_error', 'cache_id', 'cache_corrupted');
  }
  const e = err as Error & {
    code?: string;
    statusCode?: number;
    validation?: { keyword: string; instancePath: string; params: Record<string, unknown>; message?: string }[];
  };
  if (e.name === 'ContextOverflowError') return badRequest(e.message, 'messages', 'context_length_exceeded');
  if (e.validation && e.validation.length > 0) {
    const v = e.validation[0];
    const missing = v.keyword === 'required' ? String(v.params.missingProperty) : undefined;
    const param = missing ?? (v.instancePath.replace(/^\//, '').replace(/\//g, '.') || null);
    const message = missing
      ? `missing required field '${missing}'`
      : `invalid value for '${param ?? 'body'}': ${e.message.replace(/\bbody\//g, '').replace(/\bbody\b/g, 'the body')}`;
    return badRequest(message, param, missing ? 'missing_required_parameter' : 'invalid_type');
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(
        413,
        'the request body is over the size limit',
        'invalid_request_error',
        null,
        'body_too_large',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'send the body as application/json', 'invalid_request_error', null, 'unsupported_media');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return badRequest('the request body is empty; expected a JSON object', null, 'invalid_json');
  }
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, e.message, 'invalid_request_error');
  }
  return new ApiError(500, `internal error: ${e.message ?? String(err)}`, 'server_error');
}

export function buildApp(deps: AppDeps): App {
  const { options, pool, store, tokenizer, template, metrics } = deps;
  const maxContext = pool.config.maxContext;
  const vocabSize = pool.config.vocabSize;
  const keys = new Map(options.apiKeys.map((k) => [sha256(k), k]));
  const running = new Map<AbortController, string>();
  const resident = new ResidentDocuments(options.residentDocs);

  const app = Fastify({
    logger: { level: options.logLevel },
    bodyLimit: options.bodyLimit,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });
  app.decorateRequest('owner', '');

  // JSON with the checks the default parser skips: invalid UTF-8 is refused, not silently replaced
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(badRequest('the request body is not valid UTF-8', null, 'invalid_encoding'), undefined);
      return;
    }
    if (text.trim() === '') {
      done(badRequest('the request body is empty; expected a JSON object', null, 'invalid_json'), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(
        badRequest(`the request body is not valid JSON: ${(err as Error).message}`, null, 'invalid_json'),
        undefined,
      );
    }
  });

  app.setErrorHandler((err, request, reply) => {
    const api = toApiError(err);
    if (api.status >= 500) request.log.error({ err }, api.message);
    reply.code(api.status).headers(api.headers).send(api.body());
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(notFound(`no route ${request.method} ${request.url.split('?')[0]}`).body());
  });

  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/') || keys.size === 0) return;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    const hash = match ? sha256(match[1]) : undefined;
    if (!hash || !keys.has(hash)) {
      throw new ApiError(
        401,
        'missing or invalid API key: send Authorization: Bearer <key>',
        'invalid_request_error',
        null,
        'invalid_api_key',
      );
    }
    request.owner = hash;
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.requests.inc({ route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });

  // --------------------------------------------------------------------------------------------- request checks

  const checkModel = (model: string) => {
    if (model !== options.modelName) {
      throw notFound(
        `the model '${model}' does not exist; this server serves '${options.modelName}'`,
        'model',
        'model_not_found',
      );
    }
  };

  const refuse = (param: string, what: string) => {
    throw badRequest(`'${param}' ${what} is not supported by this server`, param, 'unsupported_parameter');
  };

  function checkUnsupported(body: SamplingFields & Record<string, unknown>): void {
    if (body.n != null && body.n !== 1) refuse('n', `= ${body.n} (one choice per request)`);
    if (body.best_of != null && body.best_of !== 1) refuse('best_of', `= ${body.best_of}`);
    if (body.echo === true) refuse('echo', '= true');
    if (body.logprobs != null && body.logprobs !== false && body.logprobs !== 0) refuse('logprobs', '');
    if (typeof body.suffix === 'string' && body.suffix.length > 0) refuse('suffix', '');
    if (Array.isArray(body.tools) && body.tools.length > 0) refuse('tools', '');
    for (const p of ['presence_penalty', 'frequency_penalty'] as const) {
      if (body[p] != null && body[p] !== 0) refuse(p, `≠ 0`);
    }
  }

  function resolvePolicy(field: CompressionField | undefined): CachePolicy {
    const policy = field?.policy ?? options.compression.policy;
    const problem = checkCompression(policy, field?.ratio, field?.max_entries, {
      policy: 'semanticache.policy',
      ratio: 'semanticache.ratio',
      maxEntries: 'semanticache.max_entries',
    });
    if (problem) {
      const param = problem.startsWith('semanticache.') ? problem.split(':')[0] : 'semanticache';
      throw badRequest(problem, param, 'invalid_compression');
    }
    const budget =
      field?.ratio !== undefined
        ? { ratio: field.ratio }
        : field?.max_entries !== undefined
          ? { maxEntries: field.max_entries }
          : options.compression.maxEntries !== undefined
            ? { maxEntries: options.compression.maxEntries }
            : { ratio: options.compression.ratio ?? 0 };
    return { name: policy, budget } as CachePolicy;
  }

  function flatten(messages: MessageInput[]): ChatMessage[] {
    return messages.map((m, i) => {
      if (typeof m.content === 'string') return { role: m.role, content: m.content };
      if (m.content == null) return { role: m.role, content: '' };
      const parts = m.content.map((p, j) => {
        if (p.type !== 'text' || typeof p.text !== 'string') {
          throw badRequest(
            `messages[${i}].content[${j}]: only text parts are supported, got '${p.type}'`,
            `messages[${i}].content`,
          );
        }
        return p.text;
      });
      return { role: m.role, content: parts.join('') };
    });
  }

  function render(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return template.render(messages, addGenerationPrompt);
    } catch (err) {
      throw badRequest(`the chat template (${template.origin}) failed: ${(err as Error).message}`, 'messages');
    }
  }

  /** The cache's meta now (the store decides whether it exists); its snapshot is read only if no worker holds it. */
  async function loadCache(id: string, owner: string): Promise<LoadedCache> {
    // a cache of another key answers exactly like one that does not exist
    const missing = () => notFound(`no cache '${id}'`, 'cache_id', 'cache_not_found');
    if (!CACHE_ID_PATTERN.test(id)) throw missing();
    const meta = await store.use(id);
    if (!meta || meta.owner !== owner) throw missing();
    const load = async () => {
      const found = await store.get(id);
      if (!found) throw missing(); // evicted since
      return found.snapshot;
    };
    return { meta, load };
  }

  function contextError(total: number, detail: string, param: string): ApiError {
    return badRequest(
      `this model's maximum context length is ${maxContext} tokens; the request needs ${total} (${detail})`,
      param,
      'context_length_exceeded',
    );
  }

  function sampling(body: SamplingFields, maxTokensField: number | null | undefined, positions: number): Sampling {
    const room = maxContext - positions;
    const maxTokens = maxTokensField ?? Math.min(options.defaultMaxTokens, room);
    if (maxTokens > room) {
      throw contextError(
        positions + maxTokens,
        `${positions} in the prompt + ${maxTokens} max_tokens`,
        body.max_tokens != null ? 'max_tokens' : 'max_completion_tokens',
      );
    }
    return {
      maxTokens,
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      seed: body.seed == null ? undefined : body.seed + 1,
      stop: body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
    };
  }

  /** The checks a completion and a chat request share; returns the request's cache policy. */
  function checkRequest(body: CompletionRequest | ChatRequest): CachePolicy {
    checkModel(body.model);
    checkUnsupported(body as unknown as SamplingFields & Record<string, unknown>);
    if (body.cache_id !== undefined && body.semanticache !== undefined) {
      throw badRequest(
        "'semanticache' cannot be combined with 'cache_id': a cached document was compressed when it was made",
        'semanticache',
      );
    }
    return resolvePolicy(body.semanticache);
  }

  async function prepareCompletion(body: CompletionRequest, owner: string): Promise<Prepared> {
    const policy = checkRequest(body);
    const cache = body.cache_id === undefined ? undefined : await loadCache(body.cache_id, owner);
    if (cache && cache.meta.kind !== 'prompt') {
      throw badRequest(
        `cache '${cache.meta.id}' was made from messages: continue it with /v1/chat/completions`,
        'cache_id',
      );
    }
    let ids: number[];
    const prompt = body.prompt;
    if (typeof prompt === 'string' || typeof prompt[0] === 'string') {
      ids = await tokenizer.encode(typeof prompt === 'string' ? prompt : (prompt[0] as string), !cache);
    } else {
      ids = prompt as number[];
      const bad = ids.findIndex((id) => id >= vocabSize);
      if (bad >= 0)
        throw badRequest(`prompt[${bad}]: token id ${ids[bad]} is outside the vocabulary (${vocabSize})`, 'prompt');
    }
    return finishPrepare(body, body.max_tokens, ids, cache, policy);
  }

  async function prepareChat(body: ChatRequest, owner: string): Promise<Prepared> {
    const policy = checkRequest(body);
    const messages = flatten(body.messages);
    const cache = body.cache_id === undefined ? undefined : await loadCache(body.cache_id, owner);
    let ids: number[];
    if (cache) {
      if (cache.meta.kind !== 'messages' || !cache.meta.messages) {
        throw badRequest(
          `cache '${cache.meta.id}' was made from a prompt: continue it with /v1/completions`,
          'cache_id',
        );
      }
      const prefix = render(cache.meta.messages, false);
      const full = render([...cache.meta.messages, ...messages], true);
      if (!full.startsWith(prefix)) {
        throw badRequest(
          `the chat template renders the cached messages differently once these messages follow them, so cache '${cache.meta.id}' cannot be continued`,
          'messages',
        );
      }
      ids = await tokenizer.encode(full.slice(prefix.length), false);
    } else {
      ids = await tokenizer.encode(render(messages, true), template.addSpecialTokens);
    }
    return finishPrepare(body, body.max_tokens ?? body.max_completion_tokens, ids, cache, policy);
  }

  function finishPrepare(
    body: SamplingFields,
    maxTokens: number | null | undefined,
    ids: number[],
    cache: LoadedCache | undefined,
    policy: CachePolicy,
  ): Prepared {
    const cachedTokens = cache?.meta.tokens ?? 0;
    if (ids.length === 0 && !cache) throw badRequest('the prompt is empty', 'prompt', 'empty_prompt');
    const positions = cachedTokens + ids.length;
    if (positions >= maxContext) {
      throw contextError(
        positions,
        cache ? `${cachedTokens} cached + ${ids.length} in the prompt` : `${ids.length} in the prompt`,
        'prompt',
      );
    }
    return {
      ids,
      cachedTokens,
      cache,
      policy: cache ? cache.meta.policy : policy,
      sampling: sampling(body, maxTokens, positions),
    };
  }

  // ------------------------------------------------------------------------------------------------- generation

  /** Aborts `controller` when the client goes away before the response is complete. */
  function abortOnDisconnect(res: ServerResponse, controller: AbortController): void {
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new Error('client disconnected'));
    });
  }

  async function run(
    prepared: Prepared,
    controller: AbortController,
    onText: (text: string) => void,
  ): Promise<GenerationResult> {
    const t0 = performance.now();
    let first = true;
    running.set(controller, 'running');
    metrics.inFlight.inc();
    try {
      const result = await generate(pool, resident, {
        ids: prepared.ids,
        policy: prepared.policy,
        kvDtype: options.kvDtype,
        sampling: prepared.sampling,
        document: prepared.cache && { id: prepared.cache.meta.id, load: prepared.cache.load },
        signal: controller.signal,
        onText: (text) => {
          if (first) {
            first = false;
            metrics.timeToFirstToken.observe((performance.now() - t0) / 1000);
          }
          if (text.length > 0) onText(text);
        },
      });
      metrics.promptTokens.inc(prepared.ids.length);
      metrics.generatedTokens.inc(result.completionTokens);
      if (result.completionTokens > 1 && result.decodeMs > 0) {
        metrics.tokensPerSecond.observe((result.completionTokens - 1) / (result.decodeMs / 1000));
      }
      if (result.compressMs > 0) metrics.compressionSeconds.observe(result.compressMs / 1000);
      metrics.kvBytes.set({ kind: 'full' }, result.stats.bytes.full);
      metrics.kvBytes.set({ kind: 'held' }, result.stats.bytes.current);
      return result;
    } catch (err) {
      if (err instanceof QueueAbortError || (controller.signal.aborted && (err as Error).name === 'DisposedError')) {
        throw shutdownOrGone(controller);
      }
      throw err;
    } finally {
      running.delete(controller);
      metrics.inFlight.dec();
    }
  }

  function shutdownOrGone(controller: AbortController): ApiError {
    const reason = controller.signal.reason as Error | undefined;
    return new ApiError(503, reason?.message ?? 'the request was cancelled', 'service_unavailable', null, 'cancelled');
  }

  function extension(prepared: Prepared, result: GenerationResult, cacheId: string | undefined) {
    return {
      policy: prepared.policy,
      cache_id: cacheId ?? null,
      kv: {
        entries: meanEntries(result.stats),
        bytes: { full: result.stats.bytes.full, held: result.stats.bytes.current },
      },
      compress_ms: Math.round(result.compressMs * 100) / 100,
    };
  }

  function usage(prepared: Prepared, result: GenerationResult) {
    const prompt = prepared.cachedTokens + prepared.ids.length;
    return {
      prompt_tokens: prompt,
      completion_tokens: result.completionTokens,
      total_tokens: prompt + result.completionTokens,
      prompt_tokens_details: { cached_tokens: prepared.cachedTokens },
    };
  }

  type Kind = 'chat' | 'completion';

  async function respond(
    kind: Kind,
    body: SamplingFields,
    prepared: Prepared,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<unknown> {
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const controller = new AbortController();
    const common = { id, created, model: options.modelName };
    if (!body.stream) {
      abortOnDisconnect(reply.raw, controller);
      let text = '';
      const result = await run(prepared, controller, (t) => {
        text += t;
      });
      if (controller.signal.aborted) throw shutdownOrGone(controller);
      const reason = finishReason(result.finishReason);
      const choice =
        kind === 'chat'
          ? { index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: reason }
          : { index: 0, text, logprobs: null, finish_reason: reason };
      return {
        ...common,
        object: kind === 'chat' ? 'chat.completion' : 'text_completion',
        choices: [choice],
        usage: usage(prepared, result),
        semanticache: extension(prepared, result, body.cache_id),
      };
    }

    // SSE: every failure before this point was a plain HTTP error; from here on it is an error event
    pool.checkCapacity();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders(); // the client sees 200 now, even while the request waits in the queue
    abortOnDisconnect(res, controller);
    const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const send = (data: unknown) => {
      if (!res.destroyed && !res.writableEnded) res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    const chunk = (delta: string | undefined, reason: 'stop' | 'length' | null, role = false) =>
      kind === 'chat'
        ? {
            ...common,
            object,
            choices: [
              {
                index: 0,
                delta: { ...(role ? { role: 'assistant' } : {}), ...(delta !== undefined ? { content: delta } : {}) },
                logprobs: null,
                finish_reason: reason,
              },
            ],
          }
        : { ...common, object, choices: [{ index: 0, text: delta ?? '', logprobs: null, finish_reason: reason }] };
    if (kind === 'chat') send(chunk('', null, true));
    try {
      const result = await run(prepared, controller, (t) => send(chunk(t, null)));
      if (controller.signal.aborted) throw shutdownOrGone(controller);
      const last = chunk(kind === 'chat' ? undefined : '', finishReason(result.finishReason));
      send({ ...last, semanticache: extension(prepared, result, body.cache_id) });
      if (body.stream_options?.include_usage) send({ ...common, object, choices: [], usage: usage(prepared, result) });
      if (!res.destroyed) res.write('data: [DONE]\n\n');
    } catch (err) {
      const api = toApiError(err);
      if (api.status >= 500) request.log.error({ err }, api.message);
      send(api.body() satisfies ErrorBody);
    } finally {
      res.end(); // Fastify's onResponse hook counts the request (status 200: an error event does not change it)
    }
    return reply;
  }

  // ------------------------------------------------------------------------------------------------------ routes

  app.get('/health', async () => {
    let storeOk = true;
    try {
      await store.ping();
    } catch {
      storeOk = false;
    }
    return {
      status: storeOk ? 'ok' : 'degraded',
      model: options.modelName,
      workers: pool.size,
      busy: pool.busy,
      queued: pool.queued,
      store: { kind: store.kind, ok: storeOk },
    };
  });

  app.get('/metrics', async (_request, reply) => {
    metrics.queueDepth.set(pool.queued);
    metrics.busyWorkers.set(pool.busy);
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const modelCard = () => ({
    id: options.modelName,
    object: 'model',
    created: 0,
    owned_by: 'semanticache',
    context_length: maxContext,
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    checkModel(request.params.id);
    return modelCard();
  });

  app.post<{ Body: CompletionRequest }>(
    '/v1/completions',
    { schema: { body: completionBody } },
    async (request, reply) =>
      respond('completion', request.body, await prepareCompletion(request.body, request.owner), request, reply),
  );

  app.post<{ Body: ChatRequest }>('/v1/chat/completions', { schema: { body: chatBody } }, async (request, reply) =>
    respond('chat', request.body, await prepareChat(request.body, request.owner), request, reply),
  );

  const cacheCard = (meta: CacheMeta) => ({
    id: meta.id,
    object: 'cache',
    created: meta.created,
    model: meta.model,
    kind: meta.kind,
    tokens: meta.tokens,
    entries: meta.entries,
    bytes: meta.bytes,
    snapshot_bytes: meta.snapshotBytes,
    policy: meta.policy,
    prefill_ms: Math.round(meta.prefillMs),
    compress_ms: Math.round(meta.compressMs * 100) / 100,
  });

  app.post<{ Body: CacheRequest }>('/v1/caches', { schema: { body: cacheBody } }, async (request, reply) => {
    const body = request.body;
    checkModel(body.model);
    if ((body.prompt === undefined) === (body.messages === undefined)) {
      throw badRequest("give either 'prompt' or 'messages'", body.prompt === undefined ? 'prompt' : 'messages');
    }
    const policy = resolvePolicy(body.semanticache);
    const messages = body.messages ? flatten(body.messages) : undefined;
    const ids = messages
      ? await tokenizer.encode(render(messages, false), template.addSpecialTokens)
      : await tokenizer.encode(body.prompt as string, true);
    if (ids.length === 0) throw badRequest('the document is empty', messages ? 'messages' : 'prompt', 'empty_prompt');
    if (ids.length >= maxContext) {
      throw contextError(ids.length, `${ids.length} in the document, which must leave room for a question`, 'prompt');
    }
    await store.ping();
    pool.checkCapacity();
    const controller = new AbortController();
    abortOnDisconnect(reply.raw, controller);
    running.set(controller, 'cache');
    let done: Awaited<ReturnType<typeof prefillDocument>>;
    try {
      done = await prefillDocument(pool, ids, policy, options.kvDtype, controller.signal);
    } catch (err) {
      // stopped in the queue, or in the prefill at its next block
      if (err instanceof QueueAbortError || (controller.signal.aborted && (err as Error).name === 'AbortError'))
        throw shutdownOrGone(controller);
      throw err;
    } finally {
      running.delete(controller);
    }
    metrics.promptTokens.inc(ids.length);
    if (done.compressMs > 0) metrics.compressionSeconds.observe(done.compressMs / 1000);
    const meta: CacheMeta = {
      id: `cache_${randomBytes(16).toString('hex')}`,
      owner: request.owner,
      created: Math.floor(Date.now() / 1000),
      model: options.modelName,
      kind: messages ? 'messages' : 'prompt',
      ...(messages ? { messages } : {}),
      tokens: done.stats.position,
      entries: meanEntries(done.stats),
      bytes: { full: done.stats.bytes.full, compressed: done.stats.bytes.current },
      policy,
      snapshotBytes: done.snapshot.byteLength,
      prefillMs: done.prefillMs,
      compressMs: done.compressMs,
    };
    try {
      await store.put(meta, done.snapshot);
    } catch (err) {
      if (err instanceof RangeError) {
        throw new ApiError(
          413,
          `cannot store this document: ${err.message}`,
          'invalid_request_error',
          null,
          'cache_too_large',
        );
      }
      throw err;
    }
    return cacheCard(meta);
  });

  app.get<{ Params: { id: string } }>('/v1/caches/:id', { schema: { params: cacheIdParams } }, async (request) => {
    const id = request.params.id;
    const meta = CACHE_ID_PATTERN.test(id) ? await store.meta(id) : undefined;
    if (!meta || meta.owner !== request.owner) throw notFound(`no cache '${id}'`, 'id', 'cache_not_found');
    return cacheCard(meta);
  });

  app.delete<{ Params: { id: string } }>('/v1/caches/:id', { schema: { params: cacheIdParams } }, async (request) => {
    const id = request.params.id;
    const meta = CACHE_ID_PATTERN.test(id) ? await store.meta(id) : undefined;
    if (!meta || meta.owner !== request.owner) throw notFound(`no cache '${id}'`, 'id', 'cache_not_found');
    await store.delete(id);
    await resident.forget(id);
    return { id, object: 'cache.deleted', deleted: true };
  });

  return {
    app,
    cancelAll(reason: string) {
      for (const controller of running.keys()) controller.abort(new Error(reason));
    },
    get inFlight() {
      return running.size;
    },
  };
}
