import {
  type DecodeArgs,
  decode,
  decodeAsync,
  type HeadCache,
  referenceAttention,
  type SimdLevel,
  simdLevel,
} from '@semanticache/proportional-attention';

const head: HeadCache = {
  keys: new Uint16Array(4),
  values: new Uint16Array(4),
  logSizes: new Float32Array(2),
  length: 2,
};
const args: DecodeArgs = { q: new Float32Array(2), heads: [head], numHeads: 1, headDim: 2, scale: 0.5 };
const out: Float32Array = decode(args);
const pending: Promise<Float32Array> = decodeAsync(args);
export const level: SimdLevel = simdLevel();
export const ref: Float32Array = referenceAttention({ ...args, blockLength: 1 });
export { out, pending };
