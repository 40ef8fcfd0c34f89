// Blockwise round-to-nearest quantization (src/quantize.ts's formats) in WebAssembly SIMD. Bit for bit what the
// TypeScript loops give: the scale and the levels are computed in f64 as there (x · (1 / scale) + zero + 0.5,
// truncated), then clamped to the top level.

const BLOCK: usize = 32;

/** The index in [at, at + 32) of the first value of largest magnitude (an IEEE float's magnitude orders like its bits). */
function extremeAt(at: usize): usize {
  const magnitude = i32x4.splat(0x7fffffff);
  let m = v128.and(v128.load(at), magnitude);
  for (let j: usize = 16; j < BLOCK * 4; j += 16) m = i32x4.max_s(m, v128.and(v128.load(at + j), magnitude));
  m = i32x4.max_s(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
  m = i32x4.max_s(m, v128.shuffle<i32>(m, m, 1, 0, 3, 2));
  const largest = i32x4.extract_lane(m, 0);
  let i: usize = 0;
  while ((load<i32>(at + (i << 2)) & 0x7fffffff) !== largest) i++;
  return at + (i << 2);
}

/** Levels x · inv + offset (truncated, at most top) of four floats at `at`, as four i32 lanes. */
function levels4(at: usize, inv: v128, offset: v128, top: v128): v128 {
  const x = v128.load(at);
  const lo = i32x4.trunc_sat_f64x2_s_zero(f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(x), inv), offset));
  const hi = i32x4.trunc_sat_f64x2_s_zero(
    f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<i32>(x, x, 2, 3, 0, 1)), inv), offset),
  );
  return i32x4.min_s(v128.shuffle<i32>(lo, hi, 0, 1, 4, 5), top);
}

/** Sixteen levels of the floats at `at` as bytes. */
function levels16(at: usize, inv: v128, offset: v128, top: v128): v128 {
  return i8x16.narrow_i16x8_u(
    i16x8.narrow_i32x4_u(levels4(at, inv, offset, top), levels4(at + 16, inv, offset, top)),
    i16x8.narrow_i32x4_u(levels4(at + 32, inv, offset, top), levels4(at + 48, inv, offset, top)),
  );
}

/**
 * `blocks` blocks of 32 floats at `src` → one f32 scale each at `scales` (the largest magnitude maps to −2^(bits−1))
 * and 32·bits/8 bytes each at `packed` (4 bits: low nibble first), levels offset by zero = 2^(bits−1).
 */
export function quantize(src: usize, scales: usize, packed: usize, blocks: usize, bits: i32): void {
  const zero: f64 = bits === 8 ? 128 : 8;
  const offset = f64x2.splat(zero + 0.5);
  const top = i32x4.splat(bits === 8 ? 255 : 15);
  for (let b: usize = 0; b < blocks; b++) {
    const at = src + b * BLOCK * 4;
    const scale: f64 = <f64>load<f32>(extremeAt(at)) / -zero;
    store<f32>(scales + (b << 2), <f32>scale);
    const inv = f64x2.splat(scale === 0 ? 0 : 1 / scale);
    const first = levels16(at, inv, offset, top);
    const second = levels16(at + 64, inv, offset, top);
    if (bits === 8) {
      v128.store(packed + b * 32, first);
      v128.store(packed + b * 32, second, 16);
    } else {
      const even = v128.shuffle<u8>(first, second, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      const odd = v128.shuffle<u8>(first, second, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
      v128.store(packed + b * 16, v128.or(even, i8x16.shl(odd, 4)));
    }
  }
}
