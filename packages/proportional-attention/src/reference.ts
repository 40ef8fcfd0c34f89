/**
 * Straightforward TypeScript reference of the kernel's math, in float64: the oracle for tests and a fallback for
 * tools that must run without the native addon. Same arguments and semantics as `prefill` / `decode`.
 */
import type { HeadCache } from './types.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits → number. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** number → IEEE binary16 bits, round to nearest even (via float32, as hardware converters do). */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** Float32Array → Uint16Array of fp16 bits. */
export function toFloat16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]);
  return out;
}

/** Uint16Array of fp16 bits → Float32Array. */
export function fromFloat16Bits(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i]);
  return out;
}

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
  if (array instanceof Uint16Array) for (let k = 0; k < d; k++) row[k] = halfToFloat(array[offset + k]);
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
