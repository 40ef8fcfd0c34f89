import { float16BitsToFloat32Array } from '@semanticache/kv-cache';

/** One KV head's cache as the attention kernel reads it (the proportional-attention contract). */
export interface HeadCache {
  keys: Float32Array | Uint16Array;
  values: Float32Array | Uint16Array;
  logSizes: Float32Array;
  length: number;
}

export interface AttentionArgs {
  /** m × H × d */
  q: Float32Array;
  heads: HeadCache[];
  numHeads: number;
  headDim: number;
  /** m new entries already appended at the end of every head; query i sees entries [0, n_g - m + i]. */
  blockLength: number;
  scale?: number;
  /** per KV head, length ≥ n_g: overwritten with the softmax mass each key received, summed over the group's query
   * heads and the block's queries */
  attentionMass?: Float32Array[];
}

/** The attention the runtime needs between its ONNX graphs: causal block prefill over ragged heads, plus decode. */
export interface AttentionKernel {
  prefill(args: AttentionArgs): Float32Array;
}

/**
 * Plain TypeScript proportional attention, fp64 accumulation: logit = q·k·scale + ln(size). Slow, exact, used as
 * the oracle the native kernel is tested against and as a fallback when the native addon cannot be loaded.
 */
export const referenceAttention: AttentionKernel = {
  prefill({ q, heads, numHeads: H, headDim: d, blockLength: m, scale, attentionMass }) {
    const Hkv = heads.length;
    const group = H / Hkv;
    const s = scale ?? 1 / Math.sqrt(d);
    const out = new Float32Array(m * H * d);
    const acc = new Float64Array(d);
    for (let g = 0; g < Hkv; g++) {
      const { keys, values, logSizes, length: n } = heads[g];
      const k = keys instanceof Uint16Array ? float16BitsToFloat32Array(keys.subarray(0, n * d)) : keys;
      const v = values instanceof Uint16Array ? float16BitsToFloat32Array(values.subarray(0, n * d)) : values;
      const logits = new Float64Array(n);
      attentionMass?.[g].fill(0);
      for (let i = 0; i < m; i++) {
        const visible = n - m + i + 1;
        for (let hh = g * group; hh < (g + 1) * group; hh++) {
          const qo = (i * H + hh) * d;
          let max = Number.NEGATIVE_INFINITY;
          for (let j = 0; j < visible; j++) {
            let dot = 0;
            for (let c = 0; c < d; c++) dot += q[qo + c] * k[j * d + c];
            const logit = dot * s + logSizes[j];
            logits[j] = logit;
            if (logit > max) max = logit;
          }
          let sum = 0;
          for (let j = 0; j < visible; j++) {
            logits[j] = Math.exp(logits[j] - max);
            sum += logits[j];
          }
          acc.fill(0);
          for (let j = 0; j < visible; j++) {
            const p = logits[j] / sum;
            if (attentionMass) attentionMass[g][j] += p;
            for (let c = 0; c < d; c++) acc[c] += p * v[j * d + c];
          }
          for (let c = 0; c < d; c++) out[qo + c] = acc[c];
        }
      }
    }
    return out;
  },
};
