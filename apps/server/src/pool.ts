import { type LoadModelOptions, type ModelConfig, WorkerModel } from '@semanticache/runtime';

/** The queue is full: the caller answers 429 with `Retry-After: retryAfterSeconds`. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('the server is at capacity: every worker is busy and the queue is full');
    this.name = 'QueueFullError';
  }
}

/** The job was cancelled (client gone, shutdown) while it waited in the queue. */
export class QueueAbortError extends Error {
  constructor() {
    super('cancelled while queued');
    this.name = 'QueueAbortError';
  }
}

interface Waiter {
  resolve: (model: WorkerModel) => void;
  reject: (err: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export interface PoolOptions {
  workers: number;
  /** jobs that may wait for a worker; one more is refused with QueueFullError */
  maxQueue: number;
  load?: LoadModelOptions;
}

/**
 * `workers` WorkerModels (one model per thread, so inference never blocks the event loop) and a bounded FIFO of jobs
 * waiting for one. A worker runs one job at a time: sessions of one model share its ORT sessions, and generations
 * interleaved on one thread would only slow each other down.
 */
export class WorkerPool {
  private idle: WorkerModel[];
  private waiting: Waiter[] = [];
  private jobSeconds = 1;
  private closed = false;

  private constructor(
    private readonly models: WorkerModel[],
    private readonly maxQueue: number,
    /** called whenever the queue depth or the number of busy workers changes */
    private readonly onChange: (state: { queued: number; busy: number }) => void,
  ) {
    this.idle = [...models];
  }

  static async start(
    modelPath: string,
    options: PoolOptions,
    onChange: (state: { queued: number; busy: number }) => void = () => {},
  ): Promise<WorkerPool> {
    const models: WorkerModel[] = [];
    try {
      for (let i = 0; i < options.workers; i++) models.push(await WorkerModel.load(modelPath, options.load));
    } catch (err) {
      await Promise.all(models.map((m) => m.dispose().catch(() => undefined)));
      throw err;
    }
    return new WorkerPool(models, options.maxQueue, onChange);
  }

  get config(): ModelConfig {
    return this.models[0].config;
  }

  get size(): number {
    return this.models.length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get busy(): number {
    return this.models.length - this.idle.length;
  }

  /** Throws QueueFullError when a job started now would be refused (checked before a stream's headers go out). */
  checkCapacity(): void {
    if (this.idle.length > 0 || this.waiting.length < this.maxQueue) return;
    const rounds = Math.ceil((this.waiting.length + 1) / this.models.length);
    throw new QueueFullError(Math.max(1, Math.ceil(rounds * this.jobSeconds)));
  }

  /** Tokenizes on the first worker, outside the queue (the worker answers between generation steps). */
  encode(text: string, addSpecialTokens: boolean): Promise<number[]> {
    return this.models[0].encode(text, { addSpecialTokens });
  }

  /** Runs `job` on the first free worker; waits in the queue (bounded) until one is free. */
  async run<T>(job: (model: WorkerModel) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const model = await this.acquire(signal);
    const started = performance.now();
    try {
      return await job(model);
    } finally {
      // a running average of job time, for Retry-After
      this.jobSeconds = 0.8 * this.jobSeconds + 0.2 * ((performance.now() - started) / 1000);
      this.release(model);
    }
  }

  private acquire(signal?: AbortSignal): Promise<WorkerModel> {
    if (this.closed) return Promise.reject(new QueueAbortError());
    if (signal?.aborted) return Promise.reject(new QueueAbortError());
    const model = this.idle.pop();
    if (model) {
      this.changed();
      return Promise.resolve(model);
    }
    try {
      this.checkCapacity();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<WorkerModel>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          this.changed();
          reject(new QueueAbortError());
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiting.push(waiter);
      this.changed();
    });
  }

  private release(model: WorkerModel): void {
    const next = this.waiting.shift();
    if (next) {
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.resolve(model);
    } else this.idle.push(model);
    this.changed();
  }

  private changed(): void {
    this.onChange({ queued: this.waiting.length, busy: this.busy });
  }

  /** Refuses queued jobs and disposes every worker (running jobs end with the runtime's DisposedError). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new QueueAbortError());
    await Promise.all(this.models.map((m) => m.dispose().catch(() => undefined)));
  }
}
