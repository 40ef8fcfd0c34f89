// A decode with the installed prebuild against the package's TypeScript reference: GQA (H=8, Hkv=2, d=64, n=300),
// ln(size) biases, a masked entry, fp32 and fp16 caches, every SIMD level this CPU has.
import assert from 'node:assert/strict';
import {
  decode,
  float32ArrayToFloat16Bits,
  referenceAttention,
  setSimdLevel,
  simdLevel,
  supportsAvx2,
} from '@semanticache/proportional-attention';
import { referenceAttention as referenceOnly } from '@semanticache/proportional-attention/reference';

let seed = 1;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const H = 8;
const Hkv = 2;
const d = 64;
const n = 300;
const q = Float32Array.from({ length: H * d }, random);
const heads = Array.from({ length: Hkv }, () => {
  const logSizes = Float32Array.from({ length: n }, (_, j) => (j % 7 === 0 ? Math.log(1 + (j % 5)) : 0));
  logSizes[3] = -Infinity;
  return {
    keys: Float32Array.from({ length: n * d }, random),
    values: Float32Array.from({ length: n * d }, random),
    logSizes,
    length: n,
  };
});
const half = heads.map((h) => ({
  ...h,
  keys: float32ArrayToFloat16Bits(h.keys),
  values: float32ArrayToFloat16Bits(h.values),
}));

const maxDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const levels = supportsAvx2() ? ['avx2', 'scalar'] : ['scalar'];
const report = [];
for (const level of levels) {
  setSimdLevel(level);
  assert.equal(simdLevel(), level);
  for (const [dtype, hs] of [
    ['fp32', heads],
    ['fp16', half],
  ]) {
    const ref = referenceAttention({ q, heads: hs, numHeads: H, headDim: d });
    const out = decode({ q, heads: hs, numHeads: H, headDim: d });
    const diff = maxDiff(out, ref);
    assert.ok(diff < 1e-5, `${level} ${dtype}: max abs diff ${diff}`);
    report.push(`${level}/${dtype} ${diff.toExponential(1)}`);
  }
}
setSimdLevel('auto');
// the reference entry alone (it never loads the binary) is the same function
assert.deepEqual(
  referenceOnly({ q, heads, numHeads: H, headDim: d }),
  referenceAttention({ q, heads, numHeads: H, headDim: d }),
);
console.log(`decode vs referenceAttention, max abs diff: ${report.join(', ')}`);
