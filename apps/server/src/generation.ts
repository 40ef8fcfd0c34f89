import type { CachePolicy, CacheStats, FinishReason, KVDtype, WorkerModel, WorkerSession } from '@semanticache/runtime';
import { CorruptSnapshotError } from './errors.js';
import type { WorkerPool } from './pool.js';
import type { ResidentDocuments } from './resident.js';

export interface Sampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  /** ≥ 1 (the runtime's sampler seed) */
  seed?: number;
  stop: string[];
}

export interface GenerationJob {
  /** tokens to feed: the whole prompt, or what follows a cached document */
  ids: number[];
  policy: CachePolicy;
  kvDtype: KVDtype;
  sampling: Sampling;
  /** a cached document to continue from: its id, and how to read its snapshot when no worker holds it */
  document?: { id: string; load: () => Promise<Uint8Array> };
  signal: AbortSignal;
  /** each piece of text as it becomes final; the first call marks the time to first token */
  onText: (text: string) => void;
}

export interface GenerationResult {
  finishReason: FinishReason;
  completionTokens: number;
  stats: CacheStats;
  /** compression after the prompt's prefill; 0 when nothing was compressed */
  compressMs: number;
  /** from the job's start on a worker to its first token */
  firstTokenMs: number | undefined;
  /** from the first to the last token */
  decodeMs: number;
}

/** Opens the job's session: a fresh one, or one continuing a cached document (resident, or restored). */
async function openSession(
  model: WorkerModel,
  job: GenerationJob,
  resident: ResidentDocuments,
): Promise<WorkerSession> {
  // compression happens once, explicitly, after the prompt's prefill: a cached document was compressed when it was
  // made, and the question that follows it stays exact
  const options = { policy: job.policy, compressTrigger: 'manual' as const, kvDtype: job.kvDtype };
  if (!job.document) return model.createSession(options);
  try {
    return (await resident.open(model, job.document.id, job.document.load, options)).session;
  } catch (err) {
    if ((err as Error).name === 'SnapshotError') {
      throw new CorruptSnapshotError(`the cached document's snapshot is damaged: ${(err as Error).message}`);
    }
    throw err;
  }
}

function aborted(stats: CacheStats): GenerationResult {
  return { finishReason: 'abort', completionTokens: 0, stats, compressMs: 0, firstTokenMs: undefined, decodeMs: 0 };
}

/** Runs one generation on a pool worker (queueing first if all are busy). */
export function generate(pool: WorkerPool, resident: ResidentDocuments, job: GenerationJob): Promise<GenerationResult> {
  return pool.run(async (model) => {
    const started = performance.now();
    const session = await openSession(model, job, resident);
    try {
      let prompt = job.ids;
      let compressMs = 0;
      if (!job.document && job.policy.name !== 'full' && prompt.length > 0) {
        // a disconnect stops the prompt at its next block instead of after the whole prefill
        const fed = await session.prefill(prompt, { signal: job.signal }).catch((err: Error) => {
          if (job.signal.aborted && err.name === 'AbortError') return undefined;
          throw err;
        });
        if (fed === undefined) return aborted(await session.stats());
        const t = performance.now();
        await session.compress();
        compressMs = performance.now() - t;
        prompt = [];
      }
      let firstAt: number | undefined;
      let lastAt = started;
      let produced = 0;
      if (!job.signal.aborted) {
        for await (const event of session.generate(prompt, {
          maxTokens: job.sampling.maxTokens,
          temperature: job.sampling.temperature,
          topP: job.sampling.topP,
          seed: job.sampling.seed,
          stop: job.sampling.stop,
          signal: job.signal,
        })) {
          produced++;
          lastAt = performance.now();
          firstAt ??= lastAt;
          if (event.text.length > 0 || produced === 1) job.onText(event.text);
        }
      }
      return {
        finishReason: job.signal.aborted ? 'abort' : (session.lastFinishReason ?? 'abort'),
        completionTokens: produced,
        stats: await session.stats(),
        compressMs,
        firstTokenMs: firstAt === undefined ? undefined : firstAt - started,
        decodeMs: firstAt === undefined ? 0 : lastAt - firstAt,
      };
    } finally {
      await session.dispose().catch(() => undefined);
    }
  }, job.signal);
}

export interface PrefillResult {
  snapshot: Uint8Array;
  stats: CacheStats;
  prefillMs: number;
  compressMs: number;
}

/** Prefills a document, compresses it with `policy` and returns its snapshot (for /v1/caches). */
export function prefillDocument(
  pool: WorkerPool,
  ids: number[],
  policy: CachePolicy,
  kvDtype: KVDtype,
  signal: AbortSignal,
): Promise<PrefillResult> {
  return pool.run(async (model) => {
    const session = await model.createSession({ policy, compressTrigger: 'manual', kvDtype });
    try {
      const t0 = performance.now();
      await session.prefill(ids, { signal });
      const t1 = performance.now();
      if (policy.name !== 'full') await session.compress();
      const t2 = performance.now();
      return {
        snapshot: await session.snapshot(),
        stats: await session.stats(),
        prefillMs: t1 - t0,
        compressMs: t2 - t1,
      };
    } finally {
      await session.dispose().catch(() => undefined);
    }
  }, signal);
}
