/** Weights per quantization block along the input dimension (MatMulNBits `block_size`). */
export const INT4_BLOCK = 32;

/**
 * Round-to-nearest 4-bit quantization of a row-major `[n][k]` matrix in blocks of 32 along k, in the layout of
 * onnxruntime's `com.microsoft.MatMulNBits` (bits 4, default zero point 8): per block one fp32 scale and 16 bytes,
 * low nibble first. Like llama.cpp's Q4_0, the scale maps the value of largest magnitude to -8, so the full range
 * [-8, 7] is used. `k` must be a multiple of 32.
 */
export function quantizeInt4(w: Float32Array, n: number, k: number): { packed: Uint8Array; scales: Float32Array } {
  if (k % INT4_BLOCK !== 0) throw new RangeError(`k: ${k} is not a multiple of ${INT4_BLOCK}`);
  const blocks = k / INT4_BLOCK;
  const packed = new Uint8Array(n * blocks * (INT4_BLOCK / 2));
  const scales = new Float32Array(n * blocks);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const at = row * k + b * INT4_BLOCK;
      let extreme = 0;
      for (let i = 0; i < INT4_BLOCK; i++) if (Math.abs(w[at + i]) > Math.abs(extreme)) extreme = w[at + i];
      const scale = extreme / -8;
      const inv = scale === 0 ? 0 : 1 / scale;
      scales[row * blocks + b] = scale;
      const out = (row * blocks + b) * (INT4_BLOCK / 2);
      for (let i = 0; i < INT4_BLOCK; i += 2) {
        const lo = Math.min(15, Math.max(0, Math.round(w[at + i] * inv) + 8));
        const hi = Math.min(15, Math.max(0, Math.round(w[at + i + 1] * inv) + 8));
        packed[out + i / 2] = lo | (hi << 4);
      }
    }
  }
  return { packed, scales };
}

/** The fp32 matrix `quantizeInt4` encodes (what MatMulNBits multiplies by). */
export function dequantizeInt4(packed: Uint8Array, scales: Float32Array, n: number, k: number): Float32Array {
  const blocks = k / INT4_BLOCK;
  const w = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const scale = scales[row * blocks + b];
      const src = (row * blocks + b) * (INT4_BLOCK / 2);
      for (let i = 0; i < INT4_BLOCK / 2; i++) {
        const byte = packed[src + i];
        w[row * k + b * INT4_BLOCK + 2 * i] = ((byte & 15) - 8) * scale;
        w[row * k + b * INT4_BLOCK + 2 * i + 1] = ((byte >> 4) - 8) * scale;
      }
    }
  }
  return w;
}
