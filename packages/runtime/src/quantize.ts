import { compileWasm, instantiateWasm, WASM_PAGE_BYTES, type WasmMemory } from '@semanticache/internal';
import { wasmBase64 } from './quantize.wasm.js';

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
  engine: 'auto' | 'typescript' = 'auto',
): { packed: Uint8Array; scales: Float32Array } {
  if (k % QUANT_BLOCK !== 0) throw new RangeError(`k: ${k} is not a multiple of ${QUANT_BLOCK}`);
  const blocks = (n * k) / QUANT_BLOCK;
  const scales = new Float32Array(blocks);
  const packed = new Uint8Array((blocks * QUANT_BLOCK * bits) / 8);
  const simd = engine === 'auto' ? simdQuantizer() : null;
  if (simd) quantizeInChunks(simd, w, scales, packed, bits);
  else if (bits === 8) quantize8(w, scales, packed);
  else quantize4(w, scales, packed);
  return { packed, scales };
}

// WebAssembly SIMD (assembly/quantize.ts): about 2.7× the TypeScript loops (docs/benchmarks/load.md), the same
// bytes. The matrix goes through a fixed window of the module's memory, so a vocabulary-sized head needs no memory of
// its size.
interface QuantizeExports {
  quantize(src: number, scales: number, packed: number, blocks: number, bits: number): void;
}
const CHUNK_BLOCKS = 1 << 16;
const CHUNK_SRC = CHUNK_BLOCKS * QUANT_BLOCK * 4;
const CHUNK_SCALES = CHUNK_SRC;
const CHUNK_PACKED = CHUNK_SCALES + CHUNK_BLOCKS * 4;
const CHUNK_BYTES = CHUNK_PACKED + CHUNK_BLOCKS * QUANT_BLOCK;

let simdInstance: { memory: WasmMemory; exports: QuantizeExports } | null | undefined;

/** What `quantizeBlocks` runs by default here: WebAssembly SIMD, or the TypeScript loops where SIMD is missing. */
export function defaultQuantizeEngine(): 'webassembly' | 'typescript' {
  return simdQuantizer() ? 'webassembly' : 'typescript';
}

/** The module's instance (one per thread), or null where WebAssembly SIMD is missing. */
function simdQuantizer(): { memory: WasmMemory; exports: QuantizeExports } | null {
  if (simdInstance === undefined) {
    const module = compileWasm(wasmBase64);
    simdInstance = module ? instantiateWasm<QuantizeExports>(module, CHUNK_BYTES / WASM_PAGE_BYTES) : null;
  }
  return simdInstance;
}

function quantizeInChunks(
  simd: { memory: WasmMemory; exports: QuantizeExports },
  w: Float32Array,
  scales: Float32Array,
  packed: Uint8Array,
  bits: QuantBits,
): void {
  const blockBytes = (QUANT_BLOCK * bits) / 8;
  for (let first = 0; first < scales.length; first += CHUNK_BLOCKS) {
    const count = Math.min(CHUNK_BLOCKS, scales.length - first);
    const buffer = simd.memory.buffer;
    new Float32Array(buffer, 0, count * QUANT_BLOCK).set(
      w.subarray(first * QUANT_BLOCK, (first + count) * QUANT_BLOCK),
    );
    simd.exports.quantize(0, CHUNK_SCALES, CHUNK_PACKED, count, bits);
    scales.set(new Float32Array(buffer, CHUNK_SCALES, count), first);
    packed.set(new Uint8Array(buffer, CHUNK_PACKED, count * blockBytes), first * blockBytes);
  }
}

// A large part of a quantized model's load time is these loops: one pass per block while its 32 values sit in L1, kept
// monomorphic and branch-light. Levels are round(x / scale) + zero: x / scale lies in [−zero, zero], so
// x / scale + zero + 0.5 is positive and truncation rounds it (half up); only +zero (the opposite sign of the
// extreme) needs clamping to the top level.

/** The first index in [at, at + 32) of the largest magnitude: an IEEE float's magnitude orders like its bits. */
function extremeAt(bits: Int32Array, at: number): number {
  let largest = 0;
  let where = at;
  for (let i = at; i < at + QUANT_BLOCK; i++) {
    const magnitude = bits[i] & 0x7fffffff;
    if (magnitude > largest) {
      largest = magnitude;
      where = i;
    }
  }
  return where;
}

function quantize8(w: Float32Array, scales: Float32Array, packed: Uint8Array): void {
  const bits = new Int32Array(w.buffer, w.byteOffset, w.length);
  for (let b = 0, at = 0; b < scales.length; b++, at += QUANT_BLOCK) {
    const scale = w[extremeAt(bits, at)] / -128;
    scales[b] = scale;
    const inv = scale === 0 ? 0 : 1 / scale;
    for (let i = at; i < at + QUANT_BLOCK; i++) packed[i] = Math.min((w[i] * inv + 128.5) | 0, 255);
  }
}

function quantize4(w: Float32Array, scales: Float32Array, packed: Uint8Array): void {
  const bits = new Int32Array(w.buffer, w.byteOffset, w.length);
  for (let b = 0, at = 0; b < scales.length; b++, at += QUANT_BLOCK) {
    const scale = w[extremeAt(bits, at)] / -8;
    scales[b] = scale;
    const inv = scale === 0 ? 0 : 1 / scale;
    for (let i = at; i < at + QUANT_BLOCK; i += 2) {
      const lo = Math.min((w[i] * inv + 8.5) | 0, 15);
      packed[i >> 1] = lo | (Math.min((w[i + 1] * inv + 8.5) | 0, 15) << 4);
    }
  }
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
