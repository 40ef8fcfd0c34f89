import type { DelimiterLevel, DelimiterSet } from '@semanticache/chunker';
import { isIntegerIn } from '@semanticache/internal';
import {
  type CompressionResult,
  compress as compressCache,
  DEFAULT_RECENT_WINDOW,
  KVCache,
  type KVDtype,
  needsCompression,
  type PolicyNeeds,
  triggerBudget,
} from '@semanticache/kv-cache';
import type { AttentionKernel } from './attention.js';
import { AttentionMass } from './attention-mass.js';
import type { ModelConfig } from './config.js';
import { ContextOverflowError, DisposedError, SessionBusyError } from './errors.js';
import {
  type FinishReason,
  type GenerateEvent,
  type GenerateOptions,
  generateTokens,
  StreamDecoder,
} from './generation.js';
import {
  type CachePolicy,
  type CompressTrigger,
  checkPolicy,
  checkTrigger,
  policyReads,
  usesBudget,
} from './policy.js';
import { logSoftmaxAt, Sampler } from './sampler.js';
import { decodeSessionSnapshot, encodeSessionSnapshot, type SessionState } from './session-snapshot.js';
import { StopCriteria } from './stopping.js';
import type { TextTokenizer } from './tokenizer.js';
import type { Transformer } from './transformer.js';

export interface SessionOptions {
  /**
   * Storage of cached keys and values (default float16, llama.cpp's default too: half the bytes of float32, and on the
   * demo model's held-out text the same perplexity; attention still computes in fp32).
   */
  kvDtype?: KVDtype;
  /** Tokens per prefill block (default 512): bounds the activations ORT and the kernel hold at once. */
  prefillBlock?: number;
  /** Cache policy (default { name: 'full' }: nothing is ever removed). */
  policy?: CachePolicy;
  /** When the policy runs (default 'prefill': once after each prefill). */
  compressTrigger?: CompressTrigger;
  /**
   * Attention-mass tables collected while feeding: those the policy reads ('policy', default), or both the
   * observation window's and the accumulated one ('all'), so that a snapshot can be restored under any policy.
   */
  collectMass?: 'policy' | 'all';
}

export interface CacheStats {
  /** Next position (= tokens fed so far; never shrinks with compression). */
  position: number;
  /** Entries per layer × KV head, row-major [layer][head]. */
  entries: Int32Array;
  /** KV bytes now, and what an uncompressed cache of every fed token would take. */
  bytes: { current: number; full: number };
  /** Compressions run so far. */
  compressions: number;
}

const DEFAULT_PREFILL_BLOCK = 512;
const DEFAULT_MAX_TOKENS = 256;
function checkInt(name: string, v: unknown, min: number): number {
  if (!isIntegerIn(v, min, Number.POSITIVE_INFINITY)) {
    throw new RangeError(`${name}: expected an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

/** What a session needs from its model (`Model` is one; session.ts imports nothing from model.ts). */
export interface SessionModel {
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer | undefined;
  /** @internal */ readonly transformer: Transformer;
  /** @internal */ readonly kernel: AttentionKernel;
  delimiters(level?: DelimiterLevel): DelimiterSet;
  /** @internal throws DisposedError once the model is disposed */
  assertLive(): void;
}

/**
 * One conversation with its own KV cache. Calls run one at a time; the cache persists between turns, and positions
 * keep counting from the number of tokens fed, whatever compression does to the cache.
 */
export class Session {
  readonly options: Readonly<Required<SessionOptions>>;
  private cache: KVCache;
  private fed: number[] = [];
  private lastLogits: Float32Array | undefined;
  /** A sampled token that ended a generation and is not in the cache yet: fed first by the next call. */
  private pending: number | undefined;
  /** Attention mass per entry: of the last prefill's observation window (+ decode queries since), and of all queries. */
  private mass = new AttentionMass();
  private needs: PolicyNeeds;
  private compressions = 0;
  private busy = false;
  /** What holds the session while busy: a call, or a generation (released when its iterator is collected). */
  private holder: object | undefined;
  private disposed = false;
  /** How the last `generate` ended. */
  lastFinishReason: FinishReason | undefined;
  /** What the last compression did (entries before/after, per-head remaps). */
  lastCompression: CompressionResult | undefined;

  /** @internal use `model.createSession()` */
  constructor(
    private model: SessionModel,
    options: SessionOptions,
    cache?: KVCache,
  ) {
    const kvDtype = options.kvDtype ?? 'float16';
    if (kvDtype !== 'float32' && kvDtype !== 'float16') {
      throw new TypeError(`kvDtype: expected 'float32' or 'float16', got ${String(kvDtype)}`);
    }
    const policy = checkPolicy(options.policy ?? { name: 'full' });
    const compressTrigger = checkTrigger(options.compressTrigger ?? 'prefill');
    if (compressTrigger === 'prefill' && usesBudget(policy) && policy.budget === undefined) {
      throw new RangeError(`policy.budget: policy '${policy.name}' compresses after prefill and needs a budget`);
    }
    const collectMass = options.collectMass ?? 'policy';
    if (collectMass !== 'policy' && collectMass !== 'all') {
      throw new TypeError(`collectMass: expected 'policy' or 'all', got ${String(collectMass)}`);
    }
    this.options = {
      kvDtype,
      prefillBlock: checkInt('prefillBlock', options.prefillBlock ?? DEFAULT_PREFILL_BLOCK, 1),
      policy,
      compressTrigger,
      collectMass,
    };
    this.needs =
      collectMass === 'all' ? { ...policyReads(policy), window: true, accumulated: true } : policyReads(policy);
    const c = model.config;
    this.cache =
      cache ?? new KVCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: kvDtype });
  }

  /** Tokens fed to the cache so far (the position of the next token). */
  get position(): number {
    return this.fed.length;
  }

  /** Ids fed so far, in order. */
  get tokenIds(): Int32Array {
    return Int32Array.from(this.fed);
  }

  private checkIds(ids: ArrayLike<number>, name = 'ids'): Int32Array {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new TypeError(`${name}: expected an array or typed array of token ids`);
    }
    const V = this.model.config.vocabSize;
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new RangeError(`${name}[${i}]: token id ${String(id)} is outside the vocabulary [0, ${V})`);
      }
      out[i] = id;
    }
    return out;
  }

  private assertLive(): void {
    if (this.disposed) throw new DisposedError('the session has been disposed');
    this.model.assertLive();
  }

  private enter(holder: object = {}): void {
    this.assertLive();
    if (this.busy) throw new SessionBusyError('session is busy: another call on it has not finished');
    this.busy = true;
    this.holder = holder;
  }

  private leave(holder: object): void {
    if (this.holder !== holder) return;
    this.busy = false;
    this.holder = undefined;
  }

  /** Generations whose iterator was dropped before it finished: the session is released when it is collected. */
  private static readonly abandoned = new FinalizationRegistry<{ session: Session; holder: object }>(
    ({ session, holder }) => {
      if (session.holder !== holder) return;
      session.lastFinishReason = 'abort';
      session.leave(holder);
    },
  );

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    const holder = {};
    this.enter(holder);
    try {
      return await fn();
    } finally {
      this.leave(holder);
    }
  }

  private checkRoom(n: number): void {
    const max = this.model.config.maxContext;
    if (this.fed.length + n > max) {
      throw new ContextOverflowError(
        `context overflow: ${this.fed.length} tokens in the session + ${n} new > the model's ${max}`,
      );
    }
  }

  /**
   * Feeds ids (after any pending token) in blocks; returns the logits of the last token, or of every id in `ids`.
   * When the policy scores entries, the last `recentWindow` ids of a prompt run as their own final block so the
   * kernel's attention mass of exactly those queries can be kept as the observation-window importance.
   */
  private async feed(
    ids: Int32Array,
    logits: 'last' | 'all',
    kind: 'prompt' | 'decode',
    signal?: AbortSignal,
  ): Promise<Float32Array> {
    const all = this.pending === undefined ? ids : Int32Array.of(this.pending, ...ids);
    this.checkRoom(all.length);
    const { transformer, kernel, config } = this.model;
    // decode steps pay for mass collection only when a decode-time trigger will use it
    const collect =
      (this.needs.window || this.needs.accumulated) &&
      (kind === 'prompt' || typeof this.options.compressTrigger === 'object');
    const bounds: number[] = [];
    const windowStart = collect && kind === 'prompt' ? Math.max(0, all.length - this.recentWindow()) : all.length;
    for (let at = 0; at < windowStart; at += this.options.prefillBlock) bounds.push(at);
    for (let at = windowStart; at < all.length; at += this.options.prefillBlock) bounds.push(at);
    bounds.push(all.length);
    const rows: Float32Array[] = [];
    try {
      for (let b = 0; b + 1 < bounds.length; b++) {
        // an abort stops a long prompt at the next block: the cache then holds exactly the blocks fed
        if (signal?.aborted) break;
        const part = all.subarray(bounds[b], bounds[b + 1]);
        const blockMass: Float32Array[][] = [];
        const massFor = collect
          ? (l: number) =>
              (blockMass[l] = Array.from(
                { length: config.numKvHeads },
                (_, g) => new Float32Array(this.cache.length(l, g)),
              ))
          : undefined;
        const out = await transformer.forward(part, this.fed.length, this.cache, kernel, logits, massFor);
        for (const id of part) this.fed.push(id);
        this.pending = undefined;
        if (collect) {
          const inWindow = kind === 'decode' || bounds[b] >= windowStart;
          this.mass.fold(this.cache, blockMass, this.needs, inWindow, kind === 'prompt' && bounds[b] === windowStart);
        }
        rows.push(out);
        this.lastLogits = out.subarray(out.length - config.vocabSize);
      }
    } catch (err) {
      // a failed block leaves some layers with its entries: roll them back so the cache matches `fed`
      this.cache.truncate(this.fed.length);
      throw err;
    }
    if (logits === 'last') return this.lastLogits as Float32Array;
    const joined = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    let off = 0;
    for (const r of rows) {
      joined.set(r, off);
      off += r.length;
    }
    // drop the row of a pending token fed first: the caller asked for the rows of `ids`
    return joined.subarray((all.length - ids.length) * config.vocabSize);
  }

  private recentWindow(): number {
    return (
      (this.options.policy.options as { recentWindow?: number } | undefined)?.recentWindow ?? DEFAULT_RECENT_WINDOW
    );
  }

  /** Runs after a prompt was fed: compress per the trigger. */
  private afterPrompt(): void {
    const t = this.options.compressTrigger;
    if (t === 'prefill' && this.options.policy.name !== 'full')
      this.compressNow(this.options.policy, this.options.policy.budget);
    else if (typeof t === 'object' && needsCompression(this.cache, t))
      this.compressNow(this.options.policy, triggerBudget(t));
  }

  private afterDecode(): void {
    const t = this.options.compressTrigger;
    if (typeof t === 'object' && needsCompression(this.cache, t))
      this.compressNow(this.options.policy, triggerBudget(t));
  }

  private compressNow(policy: CachePolicy, budget: CachePolicy['budget']): CompressionResult {
    const needs = policyReads(policy);
    const knobs: Record<string, unknown> = { ...(policy.options ?? {}) };
    if (needs.tokens) {
      knobs.tokenIds = this.fed;
      knobs.delimiters ??= this.model.delimiters(
        (knobs.delimiterLevel as 'sentence' | 'clause' | undefined) ?? 'sentence',
      );
      delete knobs.delimiterLevel;
    }
    if (budget !== undefined && usesBudget(policy)) knobs.budget = budget;
    this.mass.grow(this.cache, needs);
    if (needs.window) knobs.windowImportance = this.mass.window;
    if (needs.accumulated) knobs.accumulatedImportance = this.mass.accumulated;
    const result = compressCache(this.cache, policy.name, knobs as never);
    this.mass.remap(result, this.cache);
    this.compressions++;
    this.lastCompression = result;
    return result;
  }

  /**
   * Feeds prompt ids (after any pending token), runs the compress trigger; returns the next-token logits. An abort
   * stops the feed at the next block and rejects with the signal's reason (an AbortError): the cache keeps the blocks
   * fed (`position` says how many tokens) and is not compressed.
   */
  prefill(ids: ArrayLike<number>, options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    return this.run(async () => {
      const checked = this.checkIds(ids);
      if (checked.length === 0) throw new RangeError('ids: expected at least one token');
      const logits = (await this.feed(checked, 'last', 'prompt', options.signal)).slice();
      options.signal?.throwIfAborted();
      this.afterPrompt();
      return logits;
    });
  }

  /** Feeds one token; returns the next-token logits. */
  decodeStep(tokenId: number): Promise<Float32Array> {
    return this.run(async () => {
      const logits = (await this.feed(this.checkIds([tokenId], 'tokenId'), 'last', 'decode')).slice();
      this.afterDecode();
      return logits;
    });
  }

  /**
   * Teacher-forced log-probabilities of `ids` as a continuation of what the session holds (which may be a
   * compressed cache): logProbs[i] = ln p(ids[i] | context, ids[<i]). The ids are appended to the cache.
   */
  score(ids: ArrayLike<number>): Promise<{ logProbs: Float32Array; nll: number }> {
    return this.run(async () => {
      const checked = this.checkIds(ids);
      if (checked.length === 0) throw new RangeError('ids: expected at least one token');
      if (this.pending !== undefined) await this.feed(new Int32Array(0), 'last', 'decode');
      if (!this.lastLogits) throw new RangeError('score: the session is empty; prefill a context first');
      const V = this.model.config.vocabSize;
      const logProbs = new Float32Array(checked.length);
      logProbs[0] = logSoftmaxAt(this.lastLogits, checked[0]);
      const rows = await this.feed(checked, 'all', 'prompt');
      let sum = logProbs[0];
      for (let i = 1; i < checked.length; i++) {
        logProbs[i] = logSoftmaxAt(rows.subarray((i - 1) * V, i * V), checked[i]);
        sum += logProbs[i];
      }
      return { logProbs, nll: -sum / checked.length };
    });
  }

  /** Compresses the cache now with `policy` (default: the session's) down to `budget` (default: the policy's). */
  compress(
    policy: CachePolicy = this.options.policy,
    budget: CachePolicy['budget'] = policy.budget,
  ): CompressionResult {
    checkPolicy(policy);
    const holder = {};
    this.enter(holder);
    try {
      return this.compressNow(policy, budget);
    } finally {
      this.leave(holder);
    }
  }

  /**
   * Streams generated tokens. A string prompt is tokenized (with the tokenizer's special tokens only when the
   * session is empty); ids are used as they are. An empty prompt continues from where the session stands.
   * The session is busy until the stream ends: `return()` on the iterator (a `break` out of `for await`) ends it
   * at once with `lastFinishReason` 'abort'; an iterator dropped unfinished releases it when garbage-collected.
   */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<GenerateEvent> {
    const holder = {};
    const stream = this.stream(prompt, options, holder);
    Session.abandoned.register(stream, { session: this, holder }, holder);
    return stream;
  }

  private async *stream(
    prompt: string | ArrayLike<number>,
    options: GenerateOptions,
    holder: object,
  ): AsyncGenerator<GenerateEvent> {
    const tokenizer = this.model.tokenizer;
    let ids: Int32Array;
    if (typeof prompt === 'string') {
      if (!tokenizer) throw new TypeError('prompt: this model has no tokenizer; pass token ids');
      ids = this.checkIds(tokenizer.encode(prompt, { addSpecialTokens: this.fed.length === 0 }), 'prompt');
    } else {
      ids = this.checkIds(prompt, 'prompt');
    }
    const maxTokens = checkInt('maxTokens', options.maxTokens ?? DEFAULT_MAX_TOKENS, 1);
    const sampler = new Sampler(options);
    const stopping = new StopCriteria(
      options.stop ?? [],
      options.ignoreEos ? [] : this.model.config.eosTokenIds,
      (id) => this.checkIds([id], 'stop')[0],
    );
    const signal = options.signal;
    if (ids.length === 0 && !this.lastLogits && this.pending === undefined) {
      throw new RangeError('prompt: the session is empty and the prompt has no tokens');
    }
    this.checkRoom(ids.length + (this.pending === undefined ? 0 : 1));
    this.enter(holder);
    this.lastFinishReason = undefined;
    let ended = false; // finished, or failed: anything else leaving the body is a return() from the consumer
    try {
      const context = [...this.fed.slice(-4), ...(this.pending === undefined ? [] : [this.pending]), ...ids];
      let logits = this.lastLogits as Float32Array;
      if (ids.length > 0 || this.pending !== undefined) {
        logits = await this.feed(ids, 'last', ids.length > 0 ? 'prompt' : 'decode', signal);
        if (signal?.aborted) return; // a cut prompt is not compressed; finally records the abort
        if (ids.length > 0) this.afterPrompt();
        else this.afterDecode();
      }
      const decoder = tokenizer ? new StreamDecoder(tokenizer, context) : undefined;
      const steps = {
        sampled: (token: number) => {
          this.pending = token;
        },
        hasRoom: () => this.fed.length + 1 < this.model.config.maxContext,
        next: async () => {
          this.assertLive(); // disposed while the consumer held the stream
          const next = await this.feed(new Int32Array(0), 'last', 'decode');
          this.afterDecode();
          return next;
        },
      };
      for await (const event of generateTokens(logits, { sampler, stopping, decoder, maxTokens, signal }, steps)) {
        if (event.finishReason !== undefined) {
          this.lastFinishReason = event.finishReason;
          ended = true;
        }
        yield event;
      }
    } catch (err) {
      ended = true;
      throw err;
    } finally {
      if (!ended) this.lastFinishReason = 'abort';
      Session.abandoned.unregister(holder);
      this.leave(holder);
    }
  }

  stats(): CacheStats {
    this.assertLive();
    const { numLayers, numKvHeads } = this.model.config;
    const entries = new Int32Array(numLayers * numKvHeads);
    for (let l = 0; l < numLayers; l++) {
      for (let g = 0; g < numKvHeads; g++) entries[l * numKvHeads + g] = this.cache.length(l, g);
    }
    const { current, full } = this.cache.bytes();
    return { position: this.fed.length, entries, bytes: { current, full }, compressions: this.compressions };
  }

  /**
   * Serializes the session (session-snapshot.ts has the format): the cache, the fed ids, the pending token, the last
   * logits and the attention-mass tables. Options are not included: pass them again to `Session.restore`.
   */
  snapshot(): Uint8Array {
    this.assertLive();
    if (this.busy) throw new SessionBusyError('session is busy: another call on it has not finished');
    return encodeSessionSnapshot(this.cache, this.state());
  }

  private state(): SessionState {
    return {
      fed: this.fed,
      pending: this.pending,
      lastLogits: this.lastLogits,
      windowMass: this.mass.window,
      accumulatedMass: this.mass.accumulated,
      compressions: this.compressions,
    };
  }

  /**
   * An independent copy of this session (cache, fed ids, pending token, last logits, mass tables) under `options`:
   * what `Session.restore(model, session.snapshot(), options)` gives, without serializing.
   */
  fork(options: SessionOptions = {}): Session {
    if (this.disposed) throw new DisposedError('the session has been disposed');
    if (this.busy) throw new SessionBusyError('session is busy: another call on it has not finished');
    const mass = this.mass.copy();
    return Session.resume(this.model, options, this.cache.clone(), {
      fed: this.fed.slice(),
      pending: this.pending,
      lastLogits: this.lastLogits?.slice(),
      windowMass: mass.window,
      accumulatedMass: mass.accumulated,
      compressions: this.compressions,
    });
  }

  /**
   * Rebuilds a session from `snapshot()` bytes (any Uint8Array view: a Node Buffer, a subarray at any offset).
   * Throws SnapshotError on damaged or malformed data, another format version or another model's shape; the
   * whole snapshot is checked before a session is built.
   */
  static restore(model: SessionModel, bytes: Uint8Array, options: SessionOptions = {}): Session {
    model.assertLive();
    const { cache, state } = decodeSessionSnapshot(bytes, model.config);
    return Session.resume(model, options, cache, state);
  }

  /** A session over `cache` (owned by it from now on) that continues from `state`: what fork and restore share. */
  private static resume(model: SessionModel, options: SessionOptions, cache: KVCache, state: SessionState): Session {
    const session = new Session(model, { ...options, kvDtype: cache.dtype }, cache);
    session.fed = state.fed;
    session.pending = state.pending;
    session.lastLogits = state.lastLogits;
    session.mass = new AttentionMass(state.windowMass, state.accumulatedMass);
    session.compressions = state.compressions;
    return session;
  }

  dispose(): void {
    this.disposed = true;
  }
}
