import { describe, expect, it } from 'vitest';
import {
  decodeFloat16BitsRun,
  decodeFloat16Run,
  encodeFloat16Run,
  float16BitsToFloat32,
  float16BitsToFloat32Array,
  float32ArrayToFloat16Bits,
  float32ToFloat16Bits,
} from './fp16.js';
import { rng } from './rng.js';

const f32 = (x: number) => Math.fround(x);

describe('fp16 conversion', () => {
  it('encodes landmarks exactly', () => {
    expect(float32ToFloat16Bits(0)).toBe(0x0000);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff); // largest finite
    expect(float32ToFloat16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(1023 * 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(float32ToFloat16Bits(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(float32ToFloat16Bits(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
  });

  it('rounds to nearest, ties to even, in normal and subnormal range', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, even stays
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, odd rounds up
    expect(float32ToFloat16Bits(f32(1 + 2 ** -11 + 2 ** -20))).toBe(0x3c01); // above the tie
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and 2^-24 → 0
    expect(float32ToFloat16Bits(f32(2 ** -25 * (1 + 2 ** -20)))).toBe(0x0001);
    expect(float32ToFloat16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 ulps → 2
    expect(float32ToFloat16Bits(2 ** -26)).toBe(0x0000);
    expect(float32ToFloat16Bits(-(2 ** -30))).toBe(0x8000); // underflow keeps the sign
    expect(float32ToFloat16Bits(1.401298464324817e-45)).toBe(0x0000); // fp32 subnormal
    expect(float32ToFloat16Bits(1023.5 * 2 ** -24)).toBe(0x0400); // carries into the smallest normal
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff); // below the midpoint to 2^16
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // midpoint: ties to even = inf
    expect(float32ToFloat16Bits(1e10)).toBe(0x7c00);
  });

  it('keeps NaN a NaN (never inf), with its sign', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffc00000, 0x7f800100]) {
      const x = new Float32Array(new Uint32Array([bits]).buffer)[0];
      const h = float32ToFloat16Bits(x);
      expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
      expect(Number.isNaN(float16BitsToFloat32(h))).toBe(true);
      expect(h >>> 15).toBe(bits >>> 31);
    }
  });

  it('turns NaN into the quiet NaN with the top payload bits, both ways, bit for bit like x86 F16C', () => {
    // pairs read off vcvtps2ph / vcvtph2ps (x86 F16C), signalling and quiet NaNs of either sign
    const encoded: [number, number][] = [
      [0x7f800001, 0x7e00],
      [0x7fc00000, 0x7e00],
      [0x7f802000, 0x7e01],
      [0xffc00001, 0xfe00],
      [0x7fffffff, 0x7fff],
      [0x7fa00000, 0x7f00],
      [0xff812345, 0xfe09],
    ];
    const decoded: [number, number][] = [
      [0x7c01, 0x7fc02000],
      [0x7d00, 0x7fe00000],
      [0x7e00, 0x7fc00000],
      [0x7fff, 0x7fffe000],
      [0xfc01, 0xffc02000],
      [0xfe55, 0xffcaa000],
      [0x7dff, 0x7fffe000],
    ];
    // every NaN pattern of each width: bits in, bits out, through short runs (JavaScript) and long ones (the module)
    const nan32 = new Uint32Array(2 * 0x7fffff);
    for (let m = 1; m <= 0x7fffff; m++) {
      nan32[2 * (m - 1)] = 0x7f800000 | m;
      nan32[2 * (m - 1) + 1] = (0xff800000 | m) >>> 0;
    }
    const nan16 = Uint16Array.from({ length: 2 * 0x3ff }, (_, i) => (i & 1 ? 0xfc00 : 0x7c00) | ((i >> 1) + 1));
    for (const run of [500, nan32.length]) {
      const halves = new Uint16Array(nan32.length);
      for (let at = 0; at < nan32.length; at += run)
        encodeFloat16Run(nan32, at, halves, at, Math.min(run, nan32.length - at));
      for (let i = 0; i < nan32.length; i++) {
        const b = nan32[i];
        const want = ((b >>> 16) & 0x8000) | 0x7e00 | ((b & 0x7fffff) >>> 13);
        if (halves[i] !== want) expect([b.toString(16), halves[i].toString(16)]).toEqual([b.toString(16), want]);
      }
    }
    for (const run of [7, nan16.length]) {
      const words = new Uint32Array(nan16.length);
      for (let at = 0; at < nan16.length; at += run)
        decodeFloat16BitsRun(nan16, at, words, at, Math.min(run, nan16.length - at));
      for (let i = 0; i < nan16.length; i++) {
        const h = nan16[i];
        expect(words[i]).toBe((((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0);
      }
    }
    const src = Uint32Array.from(encoded, ([b]) => b);
    const halves = new Uint16Array(src.length);
    encodeFloat16Run(src, 0, halves, 0, src.length);
    expect(Array.from(halves)).toEqual(encoded.map(([, h]) => h));
    const words = new Uint32Array(decoded.length);
    decodeFloat16BitsRun(
      Uint16Array.from(decoded, ([h]) => h),
      0,
      words,
      0,
      decoded.length,
    );
    expect(Array.from(words)).toEqual(decoded.map(([, b]) => b));
    for (const [bits, h] of encoded)
      expect(float32ToFloat16Bits(new Float32Array(Uint32Array.of(bits).buffer)[0])).toBe(h);
  });

  it('decodes every bit pattern and re-encodes it unchanged (NaNs stay NaN)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const decoded = float16BitsToFloat32Array(all);
    const again = float32ArrayToFloat16Bits(decoded);
    for (let h = 0; h < 65536; h++) {
      const nanPattern = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (nanPattern) expect(Number.isNaN(decoded[h])).toBe(true);
      else expect(again[h]).toBe(h);
    }
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x3555)).toBe(f32(0.333251953125));
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
  });

  it('bulk decoding matches the scalar decoder bit for bit (NaN stays NaN), at any offsets', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const bulk = new Float32Array(65536 + 3);
    decodeFloat16Run(all, 0, bulk, 3, 65536);
    const scalar = new Uint32Array(Float32Array.from(all, (h) => float16BitsToFloat32(h)).buffer);
    const shifted = new Uint32Array(bulk.buffer, 12);
    const whole = new Uint32Array(float16BitsToFloat32Array(all).buffer);
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      // a NaN's payload may be quieted on its way through a JS number, so NaN patterns only need to stay NaN
      const nanPattern = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (nanPattern) {
        if (!Number.isNaN(bulk[3 + h])) mismatches++;
      } else if (shifted[h] !== scalar[h] || whole[h] !== scalar[h]) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('picks the nearest fp16 for random fp32 values across the range', () => {
    const random = rng(7);
    for (let t = 0; t < 20000; t++) {
      const x = f32((random() - 0.5) * 2 ** (Math.floor(random() * 44) - 28));
      const h = float32ToFloat16Bits(x);
      const y = float16BitsToFloat32(h);
      if (Math.abs(x) > 65520) continue;
      // neighbours in magnitude: the value one ulp below and one above
      const up = float16BitsToFloat32((h & 0x7fff) === 0x7c00 ? h : h + 1);
      const down = (h & 0x7fff) === 0 ? y : float16BitsToFloat32(h - 1);
      expect(Math.abs(x - y)).toBeLessThanOrEqual(Math.abs(x - up));
      expect(Math.abs(x - y)).toBeLessThanOrEqual(Math.abs(x - down));
    }
  });

  it('rejects a short destination', () => {
    expect(() => float32ArrayToFloat16Bits(new Float32Array(4), new Uint16Array(3))).toThrow(RangeError);
    expect(() => float16BitsToFloat32Array(new Uint16Array(4), new Float32Array(2))).toThrow(RangeError);
  });
});

describe('bulk conversion (WebAssembly SIMD runs)', () => {
  it('decodes all 65536 fp16 patterns like the scalar path', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    const bits = new Uint32Array(float16BitsToFloat32Array(all).buffer);
    const want = new Uint32Array(Float32Array.from(all, (h) => float16BitsToFloat32(h)).buffer);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(float16BitsToFloat32(h)))
        expect(bits[h]).toBe((((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0);
      else expect(bits[h]).toBe(want[h]);
    }
  });

  it('encodes like the scalar path: every fp16 value, its neighbours, ties, NaNs, fp32 subnormals and random bits', () => {
    const patterns: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const x = new Uint32Array(new Float32Array([float16BitsToFloat32(h)]).buffer)[0];
      // the value, one fp32 ulp either side, and the midpoints to the next fp16 value (exact ties)
      patterns.push(x, x + 1, x - 1, x + 0x1000, x + 0xfff, x + 0x1001);
    }
    const random = rng(16);
    for (let i = 0; i < 400_000; i++) patterns.push(Math.floor(random() * 2 ** 32));
    for (let i = 0; i < 2000; i++) patterns.push(i, 0x80000000 + i, 0x7f800000 + i, 0xff800000 + i * 997);
    const src = new Uint32Array(patterns.map((p) => p >>> 0));
    const got = float32ArrayToFloat16Bits(new Float32Array(src.buffer));
    const values = new Float32Array(src.buffer);
    for (let i = 0; i < src.length; i++) {
      const want = float32ToFloat16Bits(values[i]);
      if (got[i] !== want)
        expect([i, src[i].toString(16), got[i].toString(16)]).toEqual([i, src[i].toString(16), want.toString(16)]);
    }
  });

  it('handles runs longer than one module call and odd lengths, at any offset', () => {
    const random = rng(3);
    const n = (1 << 20) * 2 + 13;
    const values = Float32Array.from({ length: n }, () => (random() - 0.5) * 100);
    const halves = float32ArrayToFloat16Bits(values);
    const dst = new Float32Array(n + 5);
    decodeFloat16Run(halves, 0, dst, 5, n);
    for (let i = 0; i < n; i += 997) expect(dst[5 + i]).toBe(float16BitsToFloat32(float32ToFloat16Bits(values[i])));
    expect(dst[n + 4]).toBe(float16BitsToFloat32(halves[n - 1]));
  });
});
