// IEEE 754 binary16 <-> binary32 conversion. Node 20 has no Float16Array, so fp16 values live as their bit
// patterns in Uint16Array. Encoding rounds to nearest, ties to even. NaN, both ways, comes out as a quiet NaN of the
// same sign keeping the payload's top bits (encode: sign | 0x7e00 | mantissa >> 13; decode: sign | 0x7fc00000 |
// mantissa << 13), bit for bit what x86 F16C (vcvtps2ph / vcvtph2ps) gives. Long runs go through a WebAssembly SIMD
// module (assembly/fp16.ts, `pnpm build:wasm`) with the same results bit for bit.

import { wasmBase64 } from './fp16.wasm.js';
import { instantiateWasm } from './wasm.js';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** fp32 value -> fp16 bit pattern (round to nearest even; overflow -> ±inf; a NaN comes out quiet, keeping its top payload bits). */
export function float32ToFloat16Bits(value: number): number {
  scratchF32[0] = value;
  return encodeBits(scratchU32[0]);
}

function encodeBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    // inf keeps mantissa 0; NaN keeps its top payload bits and is forced quiet so it cannot turn into inf
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 112; // rebias 127 -> 15
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent >= 1) {
    let half = sign | (halfExponent << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    // a carry out of the mantissa bumps the exponent, and 0x7bff + 1 is inf: both are the right answer
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1;
    return half;
  }
  // fp16 subnormal (or zero): value = m · 2^-24, m = significand >> (14 - halfExponent)
  const shift = 14 - halfExponent;
  if (shift > 24) return sign;
  const significand = mantissa | 0x800000;
  let m = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (m & 1) === 1)) m += 1;
  return sign | m;
}

// 65536-entry decode table (256 KiB): decoding is the hot direction (merging reads fp16 keys and values).
const decodeTable = (() => {
  const table = new Float32Array(65536);
  const u32 = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) {
      table[h] = mantissa * 2 ** -24; // exact in fp32
      if (sign !== 0) table[h] = -table[h];
      if (mantissa === 0) u32[h] = sign >>> 0; // keep -0
    } else if (exponent === 0x1f) {
      // inf, or NaN made quiet (a signalling fp16 NaN becomes the quiet fp32 NaN with its payload, as F16C does)
      u32[h] = (sign | 0x7f800000 | (mantissa === 0 ? 0 : 0x400000) | (mantissa << 13)) >>> 0;
    } else {
      u32[h] = (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
    }
  }
  return table;
})();

const decodeBits = new Uint32Array(decodeTable.buffer);

/** fp16 bit pattern -> fp32 value (exact; a NaN comes out quiet, keeping its payload). */
export function float16BitsToFloat32(bits: number): number {
  return decodeTable[bits & 0xffff];
}

/** Bulk encode; `dst` defaults to a new array. */
export function float32ArrayToFloat16Bits(
  src: Float32Array,
  dst: Uint16Array = new Uint16Array(src.length),
): Uint16Array {
  if (dst.length < src.length) throw new RangeError(`dst: length ${dst.length} is shorter than src (${src.length})`);
  encodeFloat16Run(new Uint32Array(src.buffer, src.byteOffset, src.length), 0, dst, 0, src.length);
  return dst;
}

/** Bulk decode; `dst` defaults to a new array. */
export function float16BitsToFloat32Array(
  src: Uint16Array,
  dst: Float32Array = new Float32Array(src.length),
): Float32Array {
  if (dst.length < src.length) throw new RangeError(`dst: length ${dst.length} is shorter than src (${src.length})`);
  decodeFloat16Run(src, 0, dst, 0, src.length);
  return dst;
}

/** Decodes `count` fp16 bit patterns from src[srcOffset..] into dst[dstOffset..] (exact, like the table). */
export function decodeFloat16Run(
  src: Uint16Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  count: number,
): void {
  decodeFloat16BitsRun(src, srcOffset, new Uint32Array(dst.buffer, dst.byteOffset, dst.length), dstOffset, count);
}

/** Values per call into the module; its memory holds one run of each direction's input and output. */
const CHUNK = 1 << 20;
/** Shorter runs (such as single rows) stay in JavaScript: a call and two copies cost more. */
const MODULE_MIN = 512;

interface Codec {
  decode(src: number, dst: number, count: number): void;
  encode(src: number, dst: number, count: number): void;
  halves: Uint16Array; // the module's fp16 side, CHUNK values at byte 0
  words: Uint32Array; // the module's fp32 side, CHUNK values after the fp16 side
}

let codec: Codec | undefined;

function module(): Codec {
  if (codec !== undefined) return codec;
  const { memory, exports } = instantiateWasm(wasmBase64, (CHUNK * 6) / 65536);
  codec = {
    decode: exports.decode as Codec['decode'],
    encode: exports.encode as Codec['encode'],
    halves: new Uint16Array(memory.buffer, 0, CHUNK),
    words: new Uint32Array(memory.buffer, CHUNK * 2, CHUNK),
  };
  return codec;
}

/** decodeFloat16Run into a Uint32Array view of the fp32 destination (no view made per call). */
export function decodeFloat16BitsRun(
  src: Uint16Array,
  srcOffset: number,
  dstBits: Uint32Array,
  dstOffset: number,
  count: number,
): void {
  let done = 0;
  if (count >= MODULE_MIN) {
    const { decode, halves, words } = module();
    const bulk = count - (count % 8);
    for (; done < bulk; ) {
      const n = Math.min(CHUNK, bulk - done);
      halves.set(src.subarray(srcOffset + done, srcOffset + done + n));
      decode(0, CHUNK * 2, n);
      dstBits.set(n === CHUNK ? words : words.subarray(0, n), dstOffset + done);
      done += n;
    }
  }
  for (let j = done; j < count; j++) {
    const h = src[srcOffset + j];
    const exponent = h & 0x7c00;
    // normal numbers: rebias the exponent (+112 << 10) and shift into place, faster than a 256 KiB table lookup;
    // zeros, subnormals, infinities and NaN take the table (as bits, so a NaN keeps its payload)
    dstBits[dstOffset + j] =
      exponent !== 0 && exponent !== 0x7c00 ? ((h & 0x8000) << 16) | (((h & 0x7fff) + 0x1c000) << 13) : decodeBits[h];
  }
}

/**
 * Encodes `count` fp32 values, given as their bit patterns (a Uint32Array view of the Float32Array), from
 * srcBits[srcOffset..] into dst[dstOffset..].
 */
export function encodeFloat16Run(
  srcBits: Uint32Array,
  srcOffset: number,
  dst: Uint16Array,
  dstOffset: number,
  count: number,
): void {
  let done = 0;
  if (count >= MODULE_MIN) {
    const { encode, halves, words } = module();
    const bulk = count - (count % 8);
    for (; done < bulk; ) {
      const n = Math.min(CHUNK, bulk - done);
      words.set(srcBits.subarray(srcOffset + done, srcOffset + done + n));
      encode(CHUNK * 2, 0, n);
      dst.set(n === CHUNK ? halves : halves.subarray(0, n), dstOffset + done);
      done += n;
    }
  }
  for (let j = done; j < count; j++) {
    const b = srcBits[srcOffset + j];
    const magnitude = b & 0x7fffffff;
    // fast path, |x| in [2^-14, 65520): rebias the exponent, round to nearest even by adding 0xfff + the lowest kept
    // bit; a carry moves into the exponent and 65520 itself becomes inf, as it should
    if (magnitude >= 0x38800000 && magnitude < 0x477ff000) {
      dst[dstOffset + j] = ((b >>> 16) & 0x8000) | ((magnitude - 0x38000000 + 0xfff + ((magnitude >>> 13) & 1)) >>> 13);
    } else dst[dstOffset + j] = encodeBits(b);
  }
}
