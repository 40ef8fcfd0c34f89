// merge-values' nearest-key search at the demo model's shape (8 layers × 6 KV heads × 64 dims, 8192 tokens): per head,
// 4096 evicted raw keys against 4096 kept unit keys. Times, in one run on the same inputs, the previous search (one
// evicted key at a time, four kept keys per sweep), the register-blocked scalar search and the WebAssembly SIMD
// search, checks that all three pick the same target for every evicted key, then times the whole policy through
// `compress` at ratios 0.5 and 0.75. Keys are the structured synthetic keys of the tests (sentence direction + noise).
//
//   pnpm exec tsx bench/merge-values.ts        (LEGACY=0 skips the ~40 s previous search)
import { compress, KVCache } from '../src/index.js';
import { nearestTargets } from '../src/policies/nearest-key.js';
import { nearestTargetsSimd } from '../src/policies/nearest-key-simd.js';
import { randomImportance, rng, syntheticCache } from '../src/test-support.js';

const TOKENS = 8192;
const LAYERS = 8;
const KV_HEADS = 6;
const D = 64;
const runLegacy = process.env.LEGACY !== '0';

const { cache } = syntheticCache({
  tokens: TOKENS,
  numLayers: LAYERS,
  numKvHeads: KV_HEADS,
  headDim: D,
  dtype: 'float16',
  noise: 0.3,
});
const importance = randomImportance(cache, 7);
const snapshot = cache.snapshot();

// per head: a random half of the tokens kept (unit keys), the other half evicted (raw keys)
const random = rng(11);
const half = TOKENS / 2;
const heads: { queries: Float32Array; targets: Float32Array }[] = [];
for (let layer = 0; layer < LAYERS; layer++) {
  for (let h = 0; h < KV_HEADS; h++) {
    const keys = cache.readFloat32(layer, h, 'keys');
    const order = Int32Array.from({ length: TOKENS }, (_, i) => i);
    for (let i = TOKENS - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const swap = order[i];
      order[i] = order[j];
      order[j] = swap;
    }
    const targets = new Float32Array(half * D);
    const queries = new Float32Array(half * D);
    for (let n = 0; n < half; n++) {
      const t = order[n];
      let norm = 0;
      for (let j = 0; j < D; j++) norm += keys[t * D + j] * keys[t * D + j];
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let j = 0; j < D; j++) targets[n * D + j] = keys[t * D + j] * inv;
      queries.set(keys.subarray(order[half + n] * D, (order[half + n] + 1) * D), n * D);
    }
    heads.push({ queries, targets });
  }
}

/** The search merge-values used before: one evicted key at a time against four kept keys per sweep. */
function legacyNearest(keys: Float32Array, offset: number, unitKeys: Float32Array, k: number, d: number): number {
  let best = 0;
  let bestDot = Number.NEGATIVE_INFINITY;
  for (let t = 0; t + 3 < k; t += 4) {
    const o0 = t * d;
    const o1 = o0 + d;
    const o2 = o1 + d;
    const o3 = o2 + d;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < d; j++) {
      const x = keys[offset + j];
      s0 += x * unitKeys[o0 + j];
      s1 += x * unitKeys[o1 + j];
      s2 += x * unitKeys[o2 + j];
      s3 += x * unitKeys[o3 + j];
    }
    if (s0 > bestDot) {
      bestDot = s0;
      best = t;
    }
    if (s1 > bestDot) {
      bestDot = s1;
      best = t + 1;
    }
    if (s2 > bestDot) {
      bestDot = s2;
      best = t + 2;
    }
    if (s3 > bestDot) {
      bestDot = s3;
      best = t + 3;
    }
  }
  return best; // k is a multiple of 4 here
}

const simd = nearestTargetsSimd();
const time = (
  search: (queries: Float32Array, targets: Float32Array, out: Int32Array) => void,
): [number, Int32Array] => {
  const all = new Int32Array(heads.length * half);
  const start = performance.now();
  heads.forEach(({ queries, targets }, i) => {
    search(queries, targets, all.subarray(i * half, (i + 1) * half));
  });
  return [performance.now() - start, all];
};

const [blockedMs, blocked] = time((q, t, out) => nearestTargets(q, half, t, half, D, out));
let simdMs = Number.NaN;
if (simd !== null) {
  const [ms, picked] = time((q, t, out) => {
    if (!simd(q, half, t, half, D, out)) throw new Error('SIMD search did not fit in wasm memory');
  });
  simdMs = ms;
  if (picked.some((x, i) => x !== blocked[i])) throw new Error('SIMD and scalar searches disagree');
}
let legacyMs = Number.NaN;
if (runLegacy) {
  const [ms, picked] = time((q, t, out) => {
    for (let n = 0; n < half; n++) out[n] = legacyNearest(q, n * D, t, half, D);
  });
  legacyMs = ms;
  if (picked.some((x, i) => x !== blocked[i])) throw new Error('previous and new searches disagree');
}

console.log(`search: ${LAYERS * KV_HEADS} heads × ${half} evicted × ${half} kept × ${D} dims (same targets from all)`);
console.log('| search | ms | vs previous |');
console.log('| --- | --- | --- |');
const row = (label: string, ms: number) =>
  console.log(`| ${label} | ${ms.toFixed(0)} | ${runLegacy ? `${(legacyMs / ms).toFixed(1)}×` : '-'} |`);
if (runLegacy) row('previous (1 evicted × 4 kept, JS)', legacyMs);
row('blocked scalar (4 × 4, JS)', blockedMs);
if (simd !== null) row('WebAssembly SIMD (2 × 6, f64x2)', simdMs);
else console.log('| WebAssembly SIMD | unavailable | - |');

console.log('');
console.log('| compress merge-values | ratio | ms (median of 3) |');
console.log('| --- | --- | --- |');
for (const ratio of [0.5, 0.75]) {
  const options = { budget: { ratio }, windowImportance: importance, pooling: 'none' } as const;
  compress(KVCache.restore(snapshot), 'merge-values', options);
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const fresh = KVCache.restore(snapshot);
    const start = performance.now();
    compress(fresh, 'merge-values', options);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  console.log(`| 8192 tokens, 8 × 6 × 64, fp16 | ${ratio} | ${times[1].toFixed(0)} |`);
}
