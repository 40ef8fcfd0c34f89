import type { HeadCache, KVDtype } from '@semanticache/internal';

export type { HeadCache, KVDtype };

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
