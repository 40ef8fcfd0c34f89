import { describe, expect, it } from 'vitest';
import { decode, setSimdLevel } from './index.js';
import { float16BitsToFloat32 } from './reference.js';
import { restoreKernelSettingsAfterAll, SIMD_LEVELS } from './test-helpers.js';

restoreKernelSettingsAfterAll();

describe('fp16 storage', () => {
  it.each(SIMD_LEVELS)('the %s kernel reads every fp16 bit pattern exactly', (level) => {
    setSimdLevel(level);
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
      if (out[i] !== float16BitsToFloat32(finite[i])) expect([finite[i], out[i]]).toBe(float16BitsToFloat32(finite[i]));
  });
});
