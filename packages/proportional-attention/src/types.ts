/** One KV head of one layer: the first `length` rows of keys/values ([length × headDim], row-major) and logSizes. */
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

export interface DecodeArgs {
  /** H × d query of the new token. */
  q: Float32Array;
  /** Hkv head caches; Hkv must divide numHeads. */
  heads: HeadCache[];
  numHeads: number;
  headDim: number;
  /** Logit scale; default 1/√headDim. */
  scale?: number;
  /** Output H × d (allocated when absent). */
  out?: Float32Array;
  /** Per KV head g, Float32Array of length ≥ n_g: overwritten with the mass each key received (summed over the group). */
  attentionMass?: Float32Array[];
}

export interface PrefillArgs extends DecodeArgs {
  /** m: the block's tokens, already appended at the end of every head. q and out are m × H × d. */
  blockLength: number;
}
