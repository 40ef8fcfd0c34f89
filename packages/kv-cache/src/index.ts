export {
  float16BitsToFloat32,
  float16BitsToFloat32Array,
  float32ArrayToFloat16Bits,
  float32ToFloat16Bits,
} from '@semanticache/internal';
export {
  type CompressionResult,
  type CompressionTrace,
  type CompressOptions,
  checkPolicyOptions,
  compress,
  policyNeeds,
  policyUsesBudget,
  remapImportance,
} from './compress.js';
export { MissingImportanceError, SnapshotError, type SnapshotErrorReason } from './errors.js';
export {
  type Budget,
  checkBudget,
  DEFAULT_RECENT_WINDOW,
  DEFAULT_SINK_TOKENS,
  type Importance,
  type ProtectionOptions,
  targetEntries,
} from './plan.js';
export { DEFAULT_CHUNK_LENGTH } from './policies/chunkkv.js';
export type { HeadTrace, LayerTrace, PolicyDefinition, PolicyNeeds } from './policies/policy.js';
export { DEFAULT_POOL_SIZE, DEFAULT_POOLING, type Pooling } from './policies/pooling.js';
export type { SemanticacheOptions } from './policies/semanticache.js';
export {
  resolveSemanticacheKnobs,
  SEMANTICACHE_PRESET_KNOBS,
  SEMANTICACHE_PRESETS,
  type SemanticacheKnobs,
  type SemanticachePreset,
} from './policies/semanticache-presets.js';
export { POLICIES, type PolicyName, type PolicyOptions } from './registry.js';
export { crc32, SNAPSHOT_VERSION } from './snapshot.js';
export {
  type CacheBytes,
  type HeadCache,
  type HeadContents,
  type HeadView,
  KVCache,
  type KVCacheOptions,
  type KVDtype,
} from './store.js';
export { type DecodeTrigger, needsCompression, triggerBudget } from './triggers.js';
