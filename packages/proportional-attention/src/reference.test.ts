import { describe, expect, it } from 'vitest';
import { decode, setSimdLevel } from './index.js';
import { floatToHalf, fromFloat16Bits, halfToFloat, toFloat16Bits } from './reference.js';
import { restoreKernelSettingsAfterAll, SIMD_LEVELS } from './test-helpers.js';

restoreKernelSettingsAfterAll();

describe('fp16 conversion', () => {
  it('encodes known values with round-to-nearest-even', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(0.1)).toBe(0x2e66);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(65520)).toBe(0x7c00); // halfway to the next binade rounds up to infinity
    expect(floatToHalf(2 ** -24)).toBe(0x0001);
    expect(floatToHalf(2 ** -26)).toBe(0x0000);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie, even mantissa stays
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, odd mantissa rounds up
    expect(floatToHalf(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
    expect(Number.isNaN(halfToFloat(floatToHalf(Number.NaN)))).toBe(true);
  });

  it('round-trips every finite half exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue;
      expect(floatToHalf(halfToFloat(bits))).toBe(bits);
    }
    const values = new Float32Array([0.5, -3.25, 1e-5, 1234.5]);
    expect(Array.from(fromFloat16Bits(toFloat16Bits(values)))).toEqual([0.5, -3.25, 1.0013580322265625e-5, 1234]);
  });

  it.each(SIMD_LEVELS)('the %s kernel reads every fp16 bit pattern exactly', (level) => {
    setSimdLevel(level as 'avx2' | 'scalar');
    // One entry with p = 1: the output is that entry's value row, i.e. the kernel's own fp16 decoding.
    const finite: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) if ((bits & 0x7c00) !== 0x7c00) finite.push(bits);
    const d = finite.length;
    const out = decode({
      q: new Float32Array(d),
      heads: [{ keys: new Uint16Array(d), values: Uint16Array.from(finite), logSizes: new Float32Array(1), length: 1 }],
      numHeads: 1,
      headDim: d,
    });
    for (let i = 0; i < d; i++)
      if (out[i] !== halfToFloat(finite[i])) expect([finite[i], out[i]]).toBe(halfToFloat(finite[i]));
  });
});
