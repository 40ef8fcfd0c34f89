/** Weights per quantization block along the input dimension (MatMulNBits `block_size`). */
export const QUANT_BLOCK = 32;

/** Bits per weight of the quantized formats (MatMulNBits `bits`). */
export type QuantBits = 4 | 8;

/**
 * Round-to-nearest quantization of a row-major `[n][k]` matrix in blocks of 32 along k, in the layout of
 * onnxruntime's `com.microsoft.MatMulNBits` with its default zero point 2^(bits−1): per block one fp32 scale and
 * 32·bits/8 bytes (4 bits: low nibble first). Like llama.cpp's Q4_0 / Q8_0, the scale maps the value of largest
 * magnitude to −2^(bits−1), so the whole range is used. `k` must be a multiple of 32.
 */
export function quantizeBlocks(
  w: Float32Array,
  n: number,
  k: number,
  bits: QuantBits,
): { packed: Uint8Array; scales: Float32Array } {
  if (k % QUANT_BLOCK !== 0) throw new RangeError(`k: ${k} is not a multiple of ${QUANT_BLOCK}`);
  const zero = 1 << (bits - 1);
  const max = (1 << bits) - 1;
  const blockBytes = (QUANT_BLOCK * bits) / 8;
  const blocks = k / QUANT_BLOCK;
  const packed = new Uint8Array(n * blocks * blockBytes);
  const scales = new Float32Array(n * blocks);
  const q = new Uint8Array(QUANT_BLOCK);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const at = row * k + b * QUANT_BLOCK;
      let extreme = 0;
      for (let i = 0; i < QUANT_BLOCK; i++) if (Math.abs(w[at + i]) > Math.abs(extreme)) extreme = w[at + i];
      const scale = extreme / -zero;
      const inv = scale === 0 ? 0 : 1 / scale;
      scales[row * blocks + b] = scale;
      for (let i = 0; i < QUANT_BLOCK; i++) q[i] = Math.min(max, Math.max(0, Math.round(w[at + i] * inv) + zero));
      const out = (row * blocks + b) * blockBytes;
      if (bits === 8) packed.set(q, out);
      else for (let i = 0; i < QUANT_BLOCK; i += 2) packed[out + i / 2] = q[i] | (q[i + 1] << 4);
    }
  }
  return { packed, scales };
}

/** The fp32 matrix `quantizeBlocks` encodes (what MatMulNBits multiplies by). */
export function dequantizeBlocks(
  packed: Uint8Array,
  scales: Float32Array,
  n: number,
  k: number,
  bits: QuantBits,
): Float32Array {
  const zero = 1 << (bits - 1);
  const blockBytes = (QUANT_BLOCK * bits) / 8;
  const blocks = k / QUANT_BLOCK;
  const w = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const scale = scales[row * blocks + b];
      const src = (row * blocks + b) * blockBytes;
      const dst = row * k + b * QUANT_BLOCK;
      for (let i = 0; i < QUANT_BLOCK; i++) {
        const byte = packed[src + (bits === 8 ? i : i >> 1)];
        const level = bits === 8 ? byte : i & 1 ? byte >> 4 : byte & 15;
        w[dst + i] = (level - zero) * scale;
      }
    }
  }
  return w;
}
