// The contracts several packages share, as types only (each package's build inlines them into its declarations).

/** Storage type of cached keys and values: fp32, or IEEE fp16 bits in a Uint16Array. */
export type KVDtype = 'float32' | 'float16';

/**
 * One KV head of one layer as the attention kernel reads it: the first `length` rows of keys/values
 * ([length × headDim], row-major) and logSizes.
 */
export interface HeadCache {
  /** Float32Array, or Uint16Array holding IEEE fp16 bits; at least length × headDim elements. */
  keys: Float32Array | Uint16Array;
  /** Same dtype as keys; at least length × headDim elements. */
  values: Float32Array | Uint16Array;
  /** ln(size) of every entry (0 for a raw token); at least length elements. -Infinity masks an entry. */
  logSizes: Float32Array;
  /** Number of live entries n_g. */
  length: number;
}
