import type { Worker } from 'node:worker_threads';
import type { Budget, CompressionResult } from '@semanticache/kv-cache';
import type { ModelConfig } from './config.js';
import { DisposedError, deserializeError } from './errors.js';
import type { FinishReason, GenerateEvent, GenerateOptions } from './generation.js';
import type { LoadModelOptions } from './model.js';
import type { CachePolicy } from './policy.js';
import type { CacheStats, SessionOptions } from './session.js';
import type { Request, Response } from './worker-protocol.js';
import { startWorker } from './worker-start.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; onEvent?: (e: GenerateEvent) => void };
type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * A Model running in a worker thread, so ORT's blocking `run()` and the attention kernel never hold up the caller's
 * event loop (a server stays responsive while generating). Same shape as Model/Session, every call async.
 */
export class WorkerModel {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private disposed = false;

  private info: { config: ModelConfig; hasTokenizer: boolean } | undefined;

  private constructor(private worker: Worker) {
    worker.on('message', (msg: Response) => this.dispatch(msg));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => this.failAll(new DisposedError(`worker exited with code ${code}`)));
  }

  get config(): ModelConfig {
    return (this.info as { config: ModelConfig }).config;
  }

  get hasTokenizer(): boolean {
    return this.info?.hasTokenizer ?? false;
  }

  static async load(pathOrDir: string, options: LoadModelOptions = {}): Promise<WorkerModel> {
    if (typeof pathOrDir !== 'string' || pathOrDir.length === 0)
      throw new TypeError('pathOrDir must be a non-empty string');
    const model = new WorkerModel(startWorker('worker'));
    try {
      model.info = (await model.call({ type: 'load', path: pathOrDir, options })) as WorkerModel['info'];
    } catch (err) {
      model.disposed = true;
      await model.worker.terminate();
      throw err;
    }
    return model;
  }

  private dispatch(msg: Response): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if ('event' in msg) {
      p.onEvent?.(msg.event);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(deserializeError(msg.error));
  }

  private failAll(err: Error): void {
    this.disposed = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** @internal */
  call(body: RequestBody, onEvent?: (e: GenerateEvent) => void): Promise<unknown> & { id: number } {
    const id = this.nextId++;
    const promise = new Promise<unknown>((resolve, reject) => {
      if (this.disposed) {
        reject(new DisposedError('the worker model has been disposed'));
        return;
      }
      this.pending.set(id, { resolve, reject, onEvent });
      this.worker.postMessage({ ...body, id });
    });
    return Object.assign(promise, { id });
  }

  /** @internal */
  post(body: RequestBody): void {
    if (!this.disposed) this.worker.postMessage({ ...body, id: this.nextId++ });
  }

  async encode(text: string, options?: { addSpecialTokens?: boolean }): Promise<number[]> {
    const ids = (await this.call({ type: 'encode', text, options })) as number[] | null;
    if (!ids) throw new TypeError('encode: this model has no tokenizer');
    return ids;
  }

  async decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): Promise<string> {
    const text = (await this.call({ type: 'decode', ids: Array.from(ids), options })) as string | null;
    if (text === null) throw new TypeError('decode: this model has no tokenizer');
    return text;
  }

  async createSession(options: SessionOptions = {}): Promise<WorkerSession> {
    return new WorkerSession(this, (await this.call({ type: 'createSession', options })) as number);
  }

  async restoreSession(bytes: Uint8Array, options: SessionOptions = {}): Promise<WorkerSession> {
    return new WorkerSession(this, (await this.call({ type: 'restoreSession', bytes, options })) as number);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.call({ type: 'dispose' });
    this.disposed = true;
    await this.worker.terminate();
  }
}

/** A Session living in a WorkerModel's thread. */
export class WorkerSession {
  /** How the last `generate` ended. */
  lastFinishReason: FinishReason | undefined;

  /** @internal */
  constructor(
    private model: WorkerModel,
    readonly id: number,
  ) {}

  /** `signal` stops the prefill in the worker at its next block (see Session.prefill). */
  async prefill(ids: ArrayLike<number>, options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    const { signal } = options;
    const request = this.model.call({ type: 'prefill', session: this.id, ids: Array.from(ids) });
    const abort = () => this.model.post({ type: 'abort', target: request.id });
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      return (await request) as Float32Array;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  decodeStep(tokenId: number): Promise<Float32Array> {
    return this.model.call({ type: 'decodeStep', session: this.id, tokenId }) as Promise<Float32Array>;
  }

  score(ids: ArrayLike<number>): Promise<{ logProbs: Float32Array; nll: number }> {
    return this.model.call({ type: 'score', session: this.id, ids: Array.from(ids) }) as Promise<{
      logProbs: Float32Array;
      nll: number;
    }>;
  }

  compress(policy?: CachePolicy, budget?: Budget): Promise<CompressionResult> {
    return this.model.call({ type: 'compress', session: this.id, policy, budget }) as Promise<CompressionResult>;
  }

  stats(): Promise<CacheStats> {
    return this.model.call({ type: 'stats', session: this.id }) as Promise<CacheStats>;
  }

  /** An independent copy of this session in the same worker (see Session.fork): no snapshot crosses threads. */
  async fork(options: SessionOptions = {}): Promise<WorkerSession> {
    return new WorkerSession(
      this.model,
      (await this.model.call({ type: 'fork', session: this.id, options })) as number,
    );
  }

  snapshot(): Promise<Uint8Array> {
    return this.model.call({ type: 'snapshot', session: this.id }) as Promise<Uint8Array>;
  }

  async dispose(): Promise<void> {
    await this.model.call({ type: 'disposeSession', session: this.id });
  }

  /** Streams events from the worker; `signal` aborts the generation there. */
  async *generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<GenerateEvent> {
    const { signal, ...rest } = options;
    const queue: GenerateEvent[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: Error | undefined;
    const request = this.model.call(
      {
        type: 'generate',
        session: this.id,
        prompt: typeof prompt === 'string' ? prompt : Array.from(prompt),
        options: rest,
      },
      (event) => {
        queue.push(event);
        wake?.();
      },
    );
    request.then(
      (reason) => {
        this.lastFinishReason = (reason as FinishReason | null) ?? undefined;
        finished = true;
        wake?.();
      },
      (err: Error) => {
        failure = err;
        finished = true;
        wake?.();
      },
    );
    const abort = () => this.model.post({ type: 'abort', target: request.id });
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      for (;;) {
        if (queue.length > 0) {
          yield queue.shift() as GenerateEvent;
          continue;
        }
        if (finished) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (failure) throw failure;
    } finally {
      signal?.removeEventListener('abort', abort);
      // the consumer stopped early: stop the worker too, and wait so the session is free for the next call
      if (!finished) {
        abort();
        await request.catch(() => undefined);
      }
    }
  }
}
