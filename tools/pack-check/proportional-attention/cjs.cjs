// require() loads the same prebuild; a causal block prefill and an async decode match the reference.
const assert = require('node:assert/strict');
const { decodeAsync, prefill, referenceAttention } = require('@semanticache/proportional-attention');

const H = 4;
const d = 16;
const n = 40;
const m = 5;
const wave = (len, k) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * k));
const heads = [{ keys: wave(n * d, 0.37), values: wave(n * d, 0.11), logSizes: new Float32Array(n), length: n }];
const maxDiff = (a, b) => a.reduce((x, v, i) => Math.max(x, Math.abs(v - b[i])), 0);

const qBlock = wave(m * H * d, 0.53);
const block = prefill({ q: qBlock, heads, numHeads: H, headDim: d, blockLength: m });
const blockRef = referenceAttention({ q: qBlock, heads, numHeads: H, headDim: d, blockLength: m });
assert.ok(maxDiff(block, blockRef) < 1e-5, `prefill: ${maxDiff(block, blockRef)}`);

const q = wave(H * d, 0.29);
decodeAsync({ q, heads, numHeads: H, headDim: d }).then((out) => {
  const diff = maxDiff(out, referenceAttention({ q, heads, numHeads: H, headDim: d }));
  assert.ok(diff < 1e-5, `decodeAsync: ${diff}`);
  console.log(`prefill and decodeAsync vs reference: ${Math.max(diff, maxDiff(block, blockRef)).toExponential(1)}`);
});
