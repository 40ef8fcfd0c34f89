/**
 * Straightforward TypeScript reference of the kernel's math, in float64: the oracle for tests and a fallback for
 * tools that must run without the native addon. Same arguments and semantics as `prefill` / `decode`.
 */
import { float16BitsToFloat32 } from '@semanticache/internal';
import type { HeadCache } from './types.js';

export {
  float16BitsToFloat32,
  float16BitsToFloat32Array,
  float32ArrayToFloat16Bits,
  float32ToFloat16Bits,
} from '@semanticache/internal';

export interface ReferenceArgs {
  q: Float32Array;
  heads: HeadCache[];
  numHeads: number;
  headDim: number;
  /** Query tokens in the block (1 = decode). */
  blockLength?: number;
  scale?: number;
  attentionMass?: Float32Array[];
}

function readRow(array: Float32Array | Uint16Array, offset: number, d: number): Float64Array {
  const row = new Float64Array(d);
  if (array instanceof Uint16Array) for (let k = 0; k < d; k++) row[k] = float16BitsToFloat32(array[offset + k]);
  else for (let k = 0; k < d; k++) row[k] = array[offset + k];
  return row;
}

/**
 * out[t, i, :] = Σ_j softmax_j(q[t,i]·k_j·scale + logSizes_j) v_j over the keys query t sees: [0, n_g − m + t] of KV
 * head g = ⌊i / (H/Hkv)⌋. Masses (if given) are overwritten for j < n_g. IEEE arithmetic throughout, like the
 * kernels: a NaN logit (NaN in q, in a key or logSize the query sees, masked entries included, or ∞ − ∞) makes the
 * query's row and masses NaN; a NaN in a value element makes that output element NaN (0 × NaN included). A query
 * whose logits are all −∞ (everything it sees masked) gets zeros and no mass.
 */
export function referenceAttention(args: ReferenceArgs): Float32Array {
  const { q, heads, numHeads: H, headDim: d } = args;
  const m = args.blockLength ?? 1;
  const scale = args.scale ?? 1 / Math.sqrt(d);
  const group = H / heads.length;
  const out = new Float32Array(m * H * d);
  for (const mass of args.attentionMass ?? []) mass.fill(0);
  for (let g = 0; g < heads.length; g++) {
    const head = heads[g];
    const n = head.length;
    const keys: Float64Array[] = [];
    const values: Float64Array[] = [];
    for (let j = 0; j < n; j++) {
      keys.push(readRow(head.keys, j * d, d));
      values.push(readRow(head.values, j * d, d));
    }
    for (let t = 0; t < m; t++) {
      const visible = n - m + t + 1;
      for (let i = g * group; i < (g + 1) * group; i++) {
        const qOffset = (t * H + i) * d;
        const logits = new Float64Array(visible);
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < visible; j++) {
          let dot = 0;
          for (let k = 0; k < d; k++) dot += q[qOffset + k] * keys[j][k];
          logits[j] = dot * scale + head.logSizes[j];
          // A NaN logit sticks in the max (NaN > x is false, so a plain max would drop it): every probability is
          // then NaN. Only a query whose logits are all −∞ keeps max = −∞.
          if (logits[j] > max || Number.isNaN(logits[j])) max = logits[j];
        }
        if (max === Number.NEGATIVE_INFINITY) continue;
        let sum = 0;
        for (let j = 0; j < visible; j++) {
          logits[j] = Math.exp(logits[j] - max);
          sum += logits[j];
        }
        const row = new Float64Array(d);
        for (let j = 0; j < visible; j++) {
          const p = logits[j] / sum;
          for (let k = 0; k < d; k++) row[k] += p * values[j][k];
          if (args.attentionMass) args.attentionMass[g][j] += p;
        }
        out.set(row, qOffset);
      }
    }
  }
  return out;
}
