export {
  type Budget,
  type CompressionResult,
  type KVDtype,
  type PolicyName,
  SnapshotError,
} from '@semanticache/kv-cache';
export type { ModelConfig, RopeConfig } from './config.js';
export { ContextOverflowError, DisposedError, ModelLoadError, SessionBusyError } from './errors.js';
export {
  type FinishReason,
  type GenerateEvent,
  type GenerateOptions,
  StreamDecoder,
} from './generation.js';
export { type GgufSummary, type GgufWeightType, type WriteGgufOptions, writeGguf } from './gguf.js';
export type { WeightFormat } from './graphs.js';
export { Llama2cTokenizer } from './llama2c.js';
export { type LoadModelOptions, loadModel, Model } from './model.js';
export type { CachePolicy, CompressTrigger, PolicyKnobs } from './policy.js';
export { Sampler, type SamplerOptions, XorShift64Star } from './sampler.js';
export { type CacheStats, Session, type SessionOptions } from './session.js';
export { SESSION_SNAPSHOT_VERSION } from './session-snapshot.js';
export { HfTextTokenizer, type TextTokenizer } from './tokenizer.js';
export { WorkerModel, WorkerSession } from './worker-model.js';
