import type { HeadCache, PrefillArgs } from '@semanticache/proportional-attention';
import { referenceAttention as reference } from '@semanticache/proportional-attention/reference';
import { ModelLoadError } from './errors.js';

export type { HeadCache };

/** The attention the runtime needs between its ONNX graphs: causal block prefill over ragged heads (decode is m = 1). */
export interface AttentionKernel {
  prefill(args: PrefillArgs): Float32Array;
}

/** proportional-attention's float64 reference: slow, exact, needs no native binary. */
export const referenceAttention: AttentionKernel = { prefill: (args) => reference(args) };

/** The native kernel; its binary loads here, so a missing one fails the model load, not the first token. */
export async function loadNativeAttention(): Promise<AttentionKernel> {
  try {
    const native = await import('@semanticache/proportional-attention');
    native.simdLevel();
    return { prefill: (args) => native.prefill(args) };
  } catch (cause) {
    throw new ModelLoadError(
      'the native attention kernel (@semanticache/proportional-attention) cannot be loaded; ' +
        "build it, or pass { attention: 'reference' }",
      { cause },
    );
  }
}
