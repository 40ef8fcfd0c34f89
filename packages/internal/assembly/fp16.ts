// IEEE 754 binary16 <-> binary32 conversion of whole runs, eight values at a time in WebAssembly SIMD; the results
// equal src/fp16.ts's scalar conversion bit for bit (decoding is exact; encoding rounds to nearest, ties to even,
// overflows to ±inf; NaN either way comes out quiet with its top payload bits, like x86 F16C).

/** dst[i] = fp32 bits of the fp16 value src[i], for i < count (a multiple of 8). */
export function decode(src: usize, dst: usize, count: usize): void {
  const scale = f32x4.splat(5.192296858534828e33); // 2^112: moves the rebiased exponent into place, exactly
  const signMask = i32x4.splat(0x8000);
  const magnitudeMask = i32x4.splat(0x7fff);
  const infinity = i32x4.splat(0x7c00 << 13);
  const exponentOnes = i32x4.splat(0x7f800000);
  const quiet = i32x4.splat(0x400000);
  for (let i: usize = 0; i < count; i += 8) {
    const h = v128.load(src + (i << 1));
    const at = dst + (i << 2);
    for (let half = 0; half < 2; half++) {
      const x = half === 0 ? i32x4.extend_low_i16x8_u(h) : i32x4.extend_high_i16x8_u(h);
      const sign = i32x4.shl(v128.and(x, signMask), 16);
      const shifted = i32x4.shl(v128.and(x, magnitudeMask), 13);
      // zeros, subnormals and normals: the fp16 bits read as a tiny fp32, times 2^112; inf and NaN: exponent all ones,
      // and NaN made quiet
      const finite = f32x4.mul(shifted, scale);
      const nan = v128.and(i32x4.gt_u(shifted, infinity), quiet);
      const special = v128.or(v128.or(shifted, exponentOnes), nan);
      const isSpecial = i32x4.ge_u(shifted, infinity);
      v128.store(at + ((<usize>half) << 4), v128.or(v128.bitselect(special, finite, isSpecial), sign));
    }
  }
}

/** dst[i] = fp16 bits of the fp32 value with bits src[i], for i < count (a multiple of 8). */
export function encode(src: usize, dst: usize, count: usize): void {
  const magnitudeMask = i32x4.splat(0x7fffffff);
  const signMask = i32x4.splat(0x8000);
  const smallestNormal = i32x4.splat(0x38800000); // 2^-14
  const overflow = i32x4.splat(0x477ff000); // 65520 and up round to inf
  const infinityBits = i32x4.splat(0x7f800000);
  const half = f32x4.splat(0.5);
  for (let i: usize = 0; i < count; i += 8) {
    const at = src + (i << 2);
    const lo = encodeFour(v128.load(at), magnitudeMask, signMask, smallestNormal, overflow, infinityBits, half);
    const hi = encodeFour(v128.load(at, 16), magnitudeMask, signMask, smallestNormal, overflow, infinityBits, half);
    v128.store(dst + (i << 1), i16x8.narrow_i32x4_u(lo, hi));
  }
}

function encodeFour(
  b: v128,
  magnitudeMask: v128,
  signMask: v128,
  smallestNormal: v128,
  overflow: v128,
  infinityBits: v128,
  half: v128,
): v128 {
  const sign = v128.and(i32x4.shr_u(b, 16), signMask);
  const magnitude = v128.and(b, magnitudeMask);
  // normal: rebias, add 0xfff + the lowest kept bit (ties to even), shift; a carry moves into the exponent
  const lowestKept = v128.and(i32x4.shr_u(magnitude, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.sub(magnitude, i32x4.splat(0x38000000 - 0xfff)), lowestKept), 13);
  // subnormal and zero: adding 0.5 lines the fp16 subnormal's units up with fp32's last bits, rounded by the add
  const subnormal = i32x4.sub(f32x4.add(magnitude, half), half);
  // overflow and inf give inf; NaN keeps its top payload bits and is made quiet
  const nan = v128.or(i32x4.splat(0x7e00), i32x4.shr_u(v128.and(magnitude, i32x4.splat(0x7fffff)), 13));
  const nanLanes = i32x4.gt_u(magnitude, infinityBits);
  const large = v128.bitselect(nan, i32x4.splat(0x7c00), nanLanes);
  let out = v128.bitselect(subnormal, normal, i32x4.lt_u(magnitude, smallestNormal));
  out = v128.bitselect(large, out, i32x4.ge_u(magnitude, overflow));
  return v128.or(out, sign);
}
