import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { POLICIES, type PolicyName } from '@semanticache/kv-cache';
import { demoModelDir } from '@semanticache/model-demo';
import type { KVDtype } from '@semanticache/runtime';

/** How a request's cache is compressed when its body says nothing. */
export interface DefaultCompression {
  policy: PolicyName;
  ratio?: number;
  maxEntries?: number;
}

export interface ServerOptions {
  /** checkpoint folder (or llama2.c .bin); default: the embedded demo model */
  model: string;
  /** the id /v1/models lists and requests must name */
  modelName: string;
  host: string;
  port: number;
  /** worker threads, one model each */
  workers: number;
  /** requests that may wait for a worker; past it 429 */
  maxQueue: number;
  /** cached documents each worker keeps restored between questions (0: restore from the store every time) */
  residentDocs: number;
  /** accepted Bearer tokens; none: no authentication */
  apiKeys: string[];
  /** a directory, or a redis:// / rediss:// URL */
  store: string;
  /** total snapshot bytes the store holds before evicting the least recently used */
  storeMaxBytes: number;
  /** seconds a cached document lives unused; 0: until evicted by size */
  storeTtlSeconds: number;
  compression: DefaultCompression;
  kvDtype: KVDtype;
  /** max_tokens when a request gives none */
  defaultMaxTokens: number;
  /** request body limit, bytes */
  bodyLimit: number;
  /** how long SIGTERM waits for in-flight requests before cancelling them, ms */
  shutdownTimeoutMs: number;
  logLevel: string;
}

export const DEFAULTS: ServerOptions = {
  model: demoModelDir,
  modelName: 'semanticache-demo',
  host: '127.0.0.1',
  port: 8080,
  workers: 1,
  maxQueue: 16,
  residentDocs: 2,
  apiKeys: [],
  store: path.join(os.homedir(), '.cache', 'semanticache', 'caches'),
  storeMaxBytes: 2 * 1024 ** 3,
  storeTtlSeconds: 24 * 3600,
  compression: { policy: 'semanticache', ratio: 0.75 },
  kvDtype: 'float16',
  defaultMaxTokens: 256,
  bodyLimit: 4 * 1024 * 1024,
  shutdownTimeoutMs: 10_000,
  logLevel: 'info',
};

export const USAGE = `semanticache-server [options]: an OpenAI-compatible server (/v1/completions, /v1/chat/completions,
/v1/models, /v1/caches, /health, /metrics) for a SemantiCache-compressed model.

  --model DIR            HF checkpoint folder or llama2.c .bin (env SEMANTICACHE_MODEL; default: the demo model)
  --model-name NAME      model id clients send (default: semanticache-demo, or the folder's name)
  --host HOST            (env HOST; default 127.0.0.1)        --port N   (env PORT; default 8080; 0 = any free port)
  --workers N            inference worker threads (default 1)
  --max-queue N          requests waiting for a worker before 429 (default 16)
  --resident-docs N      cached documents each worker keeps restored between questions (default 2; 0: none)
  --api-key KEY          accepted Bearer token, repeatable (env SEMANTICACHE_API_KEYS, comma-separated)
  --store DIR|URL        cached documents: a directory or redis://host:port (env SEMANTICACHE_STORE;
                         default ~/.cache/semanticache/caches)
  --store-max-bytes N    snapshot bytes the store holds, least recently used evicted past it (default 2 GiB)
  --store-ttl S          seconds a cached document lives unused, 0 = no expiry (default 86400)
  --policy NAME          default compression policy (${POLICIES.join(', ')}; default semanticache)
  --ratio R              default fraction of the cache removed, in [0, 1) (default 0.75)
  --max-entries N        default entry ceiling per head instead of --ratio
  --kv-dtype float16|float32  KV storage (default float16)
  --max-tokens N         max_tokens when a request has none (default 256)
  --body-limit BYTES     request body limit (default 4 MiB)
  --shutdown-timeout MS  on SIGTERM, wait this long for in-flight requests, then cancel them (default 10000)
  --log-level LEVEL      pino level (default info)
  --help`;

export class OptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionsError';
  }
}

function int(raw: string, flag: string, min: number): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min) {
    throw new OptionsError(`${flag}: expected an integer ≥ ${min}, got '${raw}'`);
  }
  return v;
}

/** Checks a compression setting wherever it comes from (flags or a request body); the message names `where`. */
export function checkCompression(
  policy: string,
  ratio: number | undefined,
  maxEntries: number | undefined,
  where: { policy: string; ratio: string; maxEntries: string },
): string | undefined {
  if (!(POLICIES as readonly string[]).includes(policy)) {
    return `${where.policy}: unknown policy '${policy}' (expected one of ${POLICIES.join(', ')})`;
  }
  if (ratio !== undefined && maxEntries !== undefined) {
    return `give ${where.ratio} or ${where.maxEntries}, not both`;
  }
  if (ratio !== undefined && !(Number.isFinite(ratio) && ratio >= 0 && ratio < 1)) {
    return `${where.ratio}: a ratio is the fraction of the cache removed, in [0, 1); got ${ratio}`;
  }
  if (maxEntries !== undefined && !(Number.isInteger(maxEntries) && maxEntries >= 1)) {
    return `${where.maxEntries}: expected an integer ≥ 1, got ${maxEntries}`;
  }
  return undefined;
}

/** Flags over environment over defaults. Throws OptionsError on a bad value; returns undefined for --help. */
export function parseServerArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerOptions | undefined {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        'model-name': { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        workers: { type: 'string' },
        'max-queue': { type: 'string' },
        'resident-docs': { type: 'string' },
        'api-key': { type: 'string', multiple: true },
        store: { type: 'string' },
        'store-max-bytes': { type: 'string' },
        'store-ttl': { type: 'string' },
        policy: { type: 'string' },
        ratio: { type: 'string' },
        'max-entries': { type: 'string' },
        'kv-dtype': { type: 'string' },
        'max-tokens': { type: 'string' },
        'body-limit': { type: 'string' },
        'shutdown-timeout': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new OptionsError((err as Error).message);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (v.help) return undefined;
  const str = (name: string): string | undefined => v[name] as string | undefined;
  const o: ServerOptions = { ...DEFAULTS, compression: { ...DEFAULTS.compression } };
  const model = str('model') ?? env.SEMANTICACHE_MODEL;
  if (model) {
    o.model = path.resolve(model);
    o.modelName = path.basename(o.model).replace(/\.bin$/, '');
  }
  o.modelName = str('model-name') ?? o.modelName;
  o.host = str('host') ?? env.HOST ?? o.host;
  const port = str('port') ?? env.PORT;
  if (port !== undefined) o.port = int(port, '--port', 0);
  if (o.port > 65535) throw new OptionsError(`--port: expected 0..65535, got ${o.port}`);
  if (str('workers')) o.workers = int(str('workers') as string, '--workers', 1);
  if (str('max-queue')) o.maxQueue = int(str('max-queue') as string, '--max-queue', 0);
  if (str('resident-docs')) o.residentDocs = int(str('resident-docs') as string, '--resident-docs', 0);
  const keys = [...((v['api-key'] as string[] | undefined) ?? []), ...(env.SEMANTICACHE_API_KEYS ?? '').split(',')];
  o.apiKeys = [...new Set(keys.map((k) => k.trim()).filter((k) => k.length > 0))];
  o.store = str('store') ?? env.SEMANTICACHE_STORE ?? o.store;
  if (str('store-max-bytes')) o.storeMaxBytes = int(str('store-max-bytes') as string, '--store-max-bytes', 1);
  if (str('store-ttl')) o.storeTtlSeconds = int(str('store-ttl') as string, '--store-ttl', 0);
  const policy = str('policy') ?? o.compression.policy;
  const ratioRaw = str('ratio');
  const entriesRaw = str('max-entries');
  const ratio = ratioRaw === undefined ? undefined : Number(ratioRaw);
  const maxEntries = entriesRaw === undefined ? undefined : Number(entriesRaw);
  const problem = checkCompression(policy, ratio, maxEntries, {
    policy: '--policy',
    ratio: '--ratio',
    maxEntries: '--max-entries',
  });
  if (problem) throw new OptionsError(problem);
  o.compression = {
    policy: policy as PolicyName,
    ...(maxEntries !== undefined ? { maxEntries } : { ratio: ratio ?? DEFAULTS.compression.ratio }),
  };
  const dtype = str('kv-dtype');
  if (dtype !== undefined) {
    if (dtype !== 'float32' && dtype !== 'float16') {
      throw new OptionsError(`--kv-dtype: expected float32 or float16, got '${dtype}'`);
    }
    o.kvDtype = dtype;
  }
  if (str('max-tokens')) o.defaultMaxTokens = int(str('max-tokens') as string, '--max-tokens', 1);
  if (str('body-limit')) o.bodyLimit = int(str('body-limit') as string, '--body-limit', 1024);
  if (str('shutdown-timeout')) o.shutdownTimeoutMs = int(str('shutdown-timeout') as string, '--shutdown-timeout', 0);
  o.logLevel = str('log-level') ?? o.logLevel;
  return o;
}
