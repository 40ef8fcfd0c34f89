import type { DelimiterSet } from '@semanticache/chunker';
import type { Budget, CompressionTrace, KVDtype, PolicyName } from '@semanticache/kv-cache';
import type { WeightFormat } from '@semanticache/runtime';
import { SettingsError } from './errors.js';

/**
 * What the evaluation needs from a loaded model. The runtime adapter (runtime-engine.ts) implements it; keeping the
 * harness behind this narrow interface keeps it independent of the runtime's wider API, and lets tests measure a
 * stand-in model.
 */

export type { Budget, PolicyName };

/** Where a model is: an HF folder, or a llama2.c checkpoint with its tokenizer; `label` names it in reports. */
export type ModelLocation =
  | { format: 'hf'; dir: string; label: string }
  | { format: 'llama2c'; file: string; tokenizer: string; label: string };

export function budgetLabel(policy: PolicyName, budget: Budget): string {
  if (policy === 'full') return 'full';
  return 'ratio' in budget ? `${policy}@${budget.ratio}` : `${policy}@${budget.maxEntries}`;
}

export interface CacheStats {
  /** tokens fed to the session so far (its position), whatever compression removed since */
  tokens: number;
  /** live entries summed over layers and KV heads */
  entries: number;
  /** entries an uncompressed cache would hold for the same tokens */
  fullEntries: number;
  /** live entries per layer × KV head, row-major */
  entriesPerHead: Int32Array;
  /** bytes of the live cache */
  bytes: number;
  /** bytes an uncompressed cache would take */
  fullBytes: number;
}

/** Knobs of the compressing policies that the evaluation exposes (runtime defaults when left out). */
export interface PolicyKnobs {
  /** semanticache: a named preset of @semanticache/kv-cache's SEMANTICACHE_PRESETS (runtime default 'default') */
  preset?: string;
  /** semanticache: fixed cosine threshold τ instead of a budget */
  threshold?: number;
  delimiterLevel?: 'sentence' | 'clause';
  minChunkLength?: number;
  maxChunkLength?: number;
  sinkTokens?: number;
  recentWindow?: number;
  /** record what each compression did (`CompressionMap.trace`): the chunks used, which entries went together */
  trace?: boolean;
}

/** What one compression did: per layer × KV head, for every entry before it, the entry that now holds it (−1: evicted). */
export interface CompressionMap {
  remap: Int32Array[][];
  /** heads whose budget was below their protected entries: they kept those and compressed nothing else */
  headsAboveBudget: number;
  /** with the `trace` knob: per layer the token chunks, per head the chunks used and the cluster of every entry */
  trace?: CompressionTrace;
}

export interface SamplingOptions {
  maxTokens: number;
  /** 0 = greedy */
  temperature: number;
  /** 0 = off */
  topK: number;
  /** 1 = off */
  topP: number;
  seed: number;
  stop: string[];
}

export interface GeneratedToken {
  tokenId: number;
  text: string;
}

export interface StepProgress {
  signal?: AbortSignal;
  /** called after each block with the tokens done so far */
  onProgress?: (done: number, total: number) => void;
}

export interface EngineSession {
  /**
   * Runs the ids through the model, appending them to the cache. When `signal` aborts it stops between blocks, having
   * fed only part of the ids: `stats().tokens` says how many the session holds.
   */
  prefill(ids: readonly number[], options?: StepProgress): Promise<void>;
  /**
   * Compresses the cache with the session's policy and budget (or `budget`, e.g. `{ maxEntries }` to re-compress
   * during decoding); undefined for 'full', which keeps everything.
   */
  compress(budget?: Budget): Promise<CompressionMap | undefined>;
  /**
   * Teacher-forced scoring: feeds `ids` after what is already cached and returns the summed negative log-likelihood
   * of each id given everything before it (the first id is predicted from the last prefilled token).
   */
  score(ids: readonly number[], options?: StepProgress): Promise<{ nll: number; count: number }>;
  /** Samples a continuation of what is cached; `prompt` ids, if given, are prefilled first. */
  generate(
    prompt: readonly number[],
    sampling: SamplingOptions,
    options?: { signal?: AbortSignal },
  ): AsyncIterable<GeneratedToken>;
  stats(): CacheStats;
  /**
   * A copy of this session (cache, fed ids, collected attention statistics) under another policy: lets several
   * policies be measured on one prefill. `knobs` as for `Engine.session`.
   */
  fork(policy: PolicyName, budget: Budget, knobs?: PolicyKnobs): EngineSession;
  dispose(): void;
}

/** How a model is loaded and its caches stored. */
export interface EngineOptions {
  /** ORT intra-op threads per run (runtime default 1) */
  threads?: number;
  /** storage of cached keys and values; float16 halves KV bytes, attention still runs in fp32 */
  kvDtype?: KVDtype;
  /** the weights' format in the graphs: float32 (default), or int8 / int4 blocks quantized at load */
  weights?: WeightFormat;
}

export interface Engine {
  /** what was loaded, for reports */
  readonly label: string;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxContext: number;
  readonly vocabSize: number;
  /** The delimiter set the semanticache policy chunks by. */
  delimiters(level: 'sentence' | 'clause'): DelimiterSet;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>): string;
  /**
   * A new session; it compresses only when `compress()` is called. `collectAllMass`: collect every attention-mass
   * table while prefilling, so that forks under any policy (h2o's accumulated mass included) share this prefill.
   */
  session(
    policy: PolicyName,
    budget: Budget,
    knobs?: PolicyKnobs,
    options?: { collectAllMass?: boolean },
  ): EngineSession;
  dispose(): Promise<void>;
}

/** A SettingsError when `what` needs more tokens than the model's context. */
export function checkContext(engine: Engine, tokens: number, what: string): void {
  if (tokens > engine.maxContext) {
    throw new SettingsError(`${what} needs ${tokens} tokens but ${engine.label} has a context of ${engine.maxContext}`);
  }
}
