// Greedy seed-based clustering passes over one head's keys, in WebAssembly SIMD.
//
// A token joins a seed when f = dot·|dot| / (|a|²·|b|²) ≥ τ·|τ|, with f in float64: dot products sum the exact
// float64 products of the float32 inputs in four lanes (k mod 4), combined as (l0 + l1) + (l2 + l3), then the d mod 4
// tail in order, and squared norms use the same sums, so identical rows give f = 1 exactly.
//
// Most pairs are far from the threshold, so they are screened first: keys scaled to unit length are rounded to int16
// (×32767), and integer dot products (exact sums) estimate the cosine within a bound. Only pairs whose estimate lies
// within `margin` of τ·|τ| and pairs with a zero or tiny row get the exact float64 product, so every decision is the
// exact computation's. A screened member's recorded key is its estimate, flagged in `approximate`; exactKey gives
// the exact one where splitting members needs it.
//
// All addresses are byte offsets into the imported memory; `setup` records where the caller put each array.

let keys: usize = 0; // f32 [n × d]
let units: usize = 0; // i16 [n × unitLength]: round(32767 · key / |key|), zero-padded to a multiple of 8
let unitLength: i32 = 0;
let exactOnly: usize = 0; // u8 [n]: 1 for a row whose pairs are always decided exactly (zero or tiny keys)
let d: i32 = 0;
let n: i32 = 0;
let normSq: usize = 0; // f64 [n]
let offsets: usize = 0; // u32 [numChunks + 1]
let numChunks: i32 = 0;
let order: usize = 0; // i32: unprotected tokens of every chunk in seed order
let orderStart: usize = 0; // i32 [numChunks + 1]
let remaining: usize = 0; // i32 scratch, the longest chunk
let owner: usize = 0; // i32 [n]: seed of each token's cluster
let simKey: usize = 0; // f64 [n]: similarity with which a token joined (+∞ for seeds)
let gram: usize = 0; // f32: screening cosines of short chunks' pairs, row-major L × L
let gramStart: usize = 0; // i32 [numChunks]: element index of a chunk's matrix in `gram`, −1 if not cached
let protectedMask: usize = 0; // u8 [n], or 0 when nothing is protected
let dots: usize = 0; // f32 scratch, the longest chunk + 3
let invNorm: usize = 0; // f64 [n]: 1 / |row| (0 for a zero row); centroid comparison only, else 0
let centroidSum: usize = 0; // f64 [d]: running sum of the normalized members (centroid comparison)
let margin: f64 = 0;
let chunkCache: usize = 0; // f64 [numChunks × 2]: (lo, hi] of the keys for which a chunk's last pass holds
let chunkCount: usize = 0; // i32 [numChunks]: clusters of a chunk's last pass
let approximate: usize = 0; // u8 [n]: 1 where simKey holds a screened estimate (within margin of the exact key)
let compactTable: usize = 0; // u8 [16 × 16]: swizzle packing the lanes set in a 4-bit mask to the front
let chunkMax: usize = 0; // f32 [numChunks]: largest estimated cosine of a chunk's pairs (+∞ if unknown)

export function setup(
  keysAt: usize,
  rowLength: i32,
  rows: i32,
  normSqAt: usize,
  offsetsAt: usize,
  chunks: i32,
  orderAt: usize,
  orderStartAt: usize,
  remainingAt: usize,
  ownerAt: usize,
  simKeyAt: usize,
  gramAt: usize,
  gramStartAt: usize,
  protectedAt: usize,
  dotsAt: usize,
  invNormAt: usize,
  centroidSumAt: usize,
  unitsAt: usize,
  exactOnlyAt: usize,
  chunkCacheAt: usize,
  chunkCountAt: usize,
  chunkMaxAt: usize,
  compactTableAt: usize,
  approximateAt: usize,
): void {
  keys = keysAt;
  d = rowLength;
  n = rows;
  normSq = normSqAt;
  offsets = offsetsAt;
  numChunks = chunks;
  order = orderAt;
  orderStart = orderStartAt;
  remaining = remainingAt;
  owner = ownerAt;
  simKey = simKeyAt;
  gram = gramAt;
  gramStart = gramStartAt;
  protectedMask = protectedAt;
  dots = dotsAt;
  invNorm = invNormAt;
  centroidSum = centroidSumAt;
  units = unitsAt;
  exactOnly = exactOnlyAt;
  chunkCache = chunkCacheAt;
  chunkCount = chunkCountAt;
  chunkMax = chunkMaxAt;
  compactTable = compactTableAt;
  approximate = approximateAt;
  for (let mask = 0; mask < 16; mask++) {
    let w = 0;
    for (let lane = 0; lane < 4; lane++) {
      if ((mask & (1 << lane)) === 0) continue;
      for (let b = 0; b < 4; b++) store<u8>(compactTable + <usize>(mask * 16 + w * 4 + b), <u8>(lane * 4 + b));
      w++;
    }
    for (; w < 4; w++) for (let b = 0; b < 4; b++) store<u8>(compactTable + <usize>(mask * 16 + w * 4 + b), 0);
  }
  for (let c = 0; c < numChunks; c++) {
    store<f64>(chunkCache + ((<usize>c) << 4), Infinity); // an empty interval: nothing cached yet
    store<f64>(chunkCache + ((<usize>c) << 4), -Infinity, 8);
    store<f32>(chunkMax + ((<usize>c) << 2), Infinity);
  }
  unitLength = (d + 7) & ~7;
  // q = S·û + e with |e_k| ≤ 0.5 + S·2u (rounding, and the float32 scaling); so with |û| = 1,
  // |q_a·q_b / S² − û_a·û_b| ≤ 2·|e|/S + |e|²/S², plus 2u for turning the integer sum into float32;
  // then |c|c| − c'|c'|| ≤ δ(2 + δ).
  const scale: f64 = 32767;
  const u: f64 = 5.9604644775390625e-8; // 2^-24
  const e = (0.5 + scale * 2 * u) * Math.sqrt(<f64>d);
  const delta = (2 * e) / scale + (e * e) / (scale * scale) + 2 * u + 1e-12;
  margin = delta * (2 + delta) * 1.01 + 1e-12;
}

function row(i: i32): usize {
  return keys + ((<usize>i * <usize>d) << 2);
}

function unit(i: i32): usize {
  return units + ((<usize>i * <usize>unitLength) << 1);
}

function products(a: usize, b: usize): v128 {
  return f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(a)), f64x2.promote_low_f32x4(v128.load64_zero(b)));
}

/** The exact dot product of rows i and j (float64, the lane order described above). */
function exactDot(i: i32, j: i32): f64 {
  const a = row(i);
  const b = row(j);
  let lo = f64x2.splat(0);
  let hi = f64x2.splat(0);
  let k = 0;
  for (; k + 3 < d; k += 4) {
    const o = (<usize>k) << 2;
    lo = f64x2.add(lo, products(a + o, b + o));
    hi = f64x2.add(hi, products(a + o + 8, b + o + 8));
  }
  return dotTail(a, b, k, lo, hi);
}

/** f of rows i and j, exactly; 1 between two zero rows, 0 between a zero and a nonzero row. */
function exactSimilarity(i: i32, j: i32): f64 {
  const ni = load<f64>(normSq + ((<usize>i) << 3));
  const nj = load<f64>(normSq + ((<usize>j) << 3));
  if (ni === 0 || nj === 0) return ni === nj ? 1 : 0;
  const dot = exactDot(i, j);
  return (dot * Math.abs(dot)) / (ni * nj);
}

/** Unit row of the t-th row to compare: from the index list, or consecutive from `first`; clamped to the last one. */
function unitAt(index: usize, first: i32, t: i32, count: i32): usize {
  const u = t < count ? t : count - 1;
  return unit(index !== 0 ? load<i32>(index + ((<usize>u) << 2)) : first + u);
}

/**
 * out[t] = estimated cosine (float32) of unit row `a` with row t, for t < count, four rows at a time (a last partial
 * group repeats its last row, so `out` needs room for count + 3 values). Partial sums cannot overflow int32: by
 * Cauchy–Schwarz each is at most |q_a|·|q_b| < 2^31.
 */
function estimates(a: usize, index: usize, first: i32, count: i32, out: usize): void {
  const bytes = (<usize>unitLength) << 1;
  const unitScale = f32x4.splat(<f32>1 / (<f32>32767 * <f32>32767));
  for (let t = 0; t < count; t += 4) {
    const b0 = unitAt(index, first, t, count);
    const b1 = unitAt(index, first, t + 1, count);
    const b2 = unitAt(index, first, t + 2, count);
    const b3 = unitAt(index, first, t + 3, count);
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let s2 = i32x4.splat(0);
    let s3 = i32x4.splat(0);
    for (let o: usize = 0; o < bytes; o += 16) {
      const x = v128.load(a + o);
      s0 = i32x4.add(s0, i32x4.dot_i16x8_s(x, v128.load(b0 + o)));
      s1 = i32x4.add(s1, i32x4.dot_i16x8_s(x, v128.load(b1 + o)));
      s2 = i32x4.add(s2, i32x4.dot_i16x8_s(x, v128.load(b2 + o)));
      s3 = i32x4.add(s3, i32x4.dot_i16x8_s(x, v128.load(b3 + o)));
    }
    // the four horizontal sums at once (integer sums: exact in any order), then to float32 cosines
    const pairs01 = i32x4.add(i32x4.shuffle(s0, s1, 0, 4, 1, 5), i32x4.shuffle(s0, s1, 2, 6, 3, 7));
    const pairs23 = i32x4.add(i32x4.shuffle(s2, s3, 0, 4, 1, 5), i32x4.shuffle(s2, s3, 2, 6, 3, 7));
    const sums = i32x4.add(i32x4.shuffle(pairs01, pairs23, 0, 1, 4, 5), i32x4.shuffle(pairs01, pairs23, 2, 3, 6, 7));
    v128.store(out + ((<usize>t) << 2), f32x4.mul(f32x4.convert_i32x4_s(sums), unitScale));
  }
}

/** Lanes summed as (l0 + l1) + (l2 + l3), then rows a and b's products from dimension `from` on, in order. */
function dotTail(a: usize, b: usize, from: i32, lo: v128, hi: v128): f64 {
  let s =
    f64x2.extract_lane(lo, 0) + f64x2.extract_lane(lo, 1) + (f64x2.extract_lane(hi, 0) + f64x2.extract_lane(hi, 1));
  for (let k = from; k < d; k++) s += <f64>load<f32>(a + ((<usize>k) << 2)) * <f64>load<f32>(b + ((<usize>k) << 2));
  return s;
}

/**
 * Squared norms and unit rows of every row; returns the first row whose norm is not finite (NaN or ±Inf in it), or
 * −1. In centroid mode (invNorm set) it writes inverse norms instead of unit rows.
 */
export function squaredNorms(): i32 {
  // two rows at a time: four independent accumulator chains instead of two
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const r0 = row(i);
    const r1 = row(i + 1);
    let lo0 = f64x2.splat(0);
    let hi0 = f64x2.splat(0);
    let lo1 = f64x2.splat(0);
    let hi1 = f64x2.splat(0);
    let k = 0;
    for (; k + 3 < d; k += 4) {
      const o = (<usize>k) << 2;
      lo0 = f64x2.add(lo0, products(r0 + o, r0 + o));
      hi0 = f64x2.add(hi0, products(r0 + o + 8, r0 + o + 8));
      lo1 = f64x2.add(lo1, products(r1 + o, r1 + o));
      hi1 = f64x2.add(hi1, products(r1 + o + 8, r1 + o + 8));
    }
    store<f64>(normSq + ((<usize>i) << 3), dotTail(r0, r0, k, lo0, hi0));
    store<f64>(normSq + ((<usize>(i + 1)) << 3), dotTail(r1, r1, k, lo1, hi1));
  }
  if (i < n) store<f64>(normSq + ((<usize>i) << 3), exactDot(i, i));
  let bad = -1;
  for (let i = 0; i < n; i++) {
    const r = row(i);
    const s = load<f64>(normSq + ((<usize>i) << 3));
    if (s - s !== 0) {
      // NaN or ±Inf
      if (bad < 0) bad = i;
      continue;
    }
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    if (invNorm !== 0) {
      store<f64>(invNorm + ((<usize>i) << 3), inv);
      continue;
    }
    const out = unit(i);
    const factor = <f32>(inv * 32767);
    // zero rows, and rows so tiny that the scale overflows float32, are never screened
    store<u8>(exactOnly + <usize>i, s > 0 && factor - factor === 0 ? 0 : 1);
    const scaled = f32x4.splat(factor);
    let k = 0;
    for (; k + 7 < d; k += 8) {
      const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(r + ((<usize>k) << 2)), scaled)));
      const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(r + ((<usize>k) << 2), 16), scaled)));
      v128.store(out + ((<usize>k) << 1), i16x8.narrow_i32x4_s(lo, hi));
    }
    for (; k < unitLength; k++) {
      const v = k < d ? <i32>nearest<f32>(load<f32>(r + ((<usize>k) << 2)) * factor) : 0;
      store<i16>(out + ((<usize>k) << 1), <i16>v);
    }
  }
  return bad;
}

/** Fills the screening matrices of the chunks that have one (gramStart ≥ 0); the diagonal is never read. */
export function buildGram(): void {
  for (let c = 0; c < numChunks; c++) {
    const base = load<i32>(gramStart + ((<usize>c) << 2));
    if (base < 0) continue;
    const start = load<i32>(offsets + ((<usize>c) << 2));
    const len = load<i32>(offsets + ((<usize>(c + 1)) << 2)) - start;
    const matrix = gram + ((<usize>base) << 2);
    let largest: f32 = -Infinity;
    let unscreened = false;
    for (let a = 0; a < len; a++) {
      estimates(unit(start + a), 0, start + a + 1, len - a - 1, dots);
      const exactA = load<u8>(exactOnly + <usize>(start + a));
      for (let b = a + 1; b < len; b++) {
        // NaN sends pairs with an unscreened row to the exact path
        const exact = (exactA | load<u8>(exactOnly + <usize>(start + b))) !== 0;
        const e = exact ? <f32>NaN : load<f32>(dots + ((<usize>(b - a - 1)) << 2));
        store<f32>(matrix + ((<usize>(a * len + b)) << 2), e);
        store<f32>(matrix + ((<usize>(b * len + a)) << 2), e);
        if (exact) unscreened = true;
        else if (e > largest) largest = e;
      }
    }
    store<f32>(chunkMax + ((<usize>c) << 2), unscreened ? <f32>Infinity : largest);
  }
}

/** The smallest float32 ≥ x (x finite or −∞): for a float32 c, c ≥ x ⟺ c ≥ it, and c < x ⟺ c < it. */
function float32AtLeast(x: f64): f32 {
  let f = <f32>x;
  if (<f64>f < x) {
    if (f === 0) f = reinterpret<f32>(<u32>1);
    else if (f > 0) f = reinterpret<f32>(reinterpret<u32>(f) + 1);
    else f = reinterpret<f32>(reinterpret<u32>(f) - 1);
  }
  return f;
}

/** The cosine c with c·|c| = key. */
function signedRoot(key: f64): f64 {
  return key >= 0 ? Math.sqrt(key) : -Math.sqrt(-key);
}

/** The exact similarity key of token j to the seed of its cluster (owner[j]). */
export function exactKey(j: i32): f64 {
  return exactSimilarity(load<i32>(owner + ((<usize>j) << 2)), j);
}

/** How far a screened estimate can be from the exact key. */
export function screeningMargin(): f64 {
  return margin;
}

/** Marks protected tokens as singletons and returns their number (every pass counts them as clusters). */
function recordProtected(record: bool): i32 {
  if (record && protectedMask !== 0) {
    for (let i = 0; i < n; i++) {
      if (load<u8>(protectedMask + <usize>i) !== 0) {
        store<i32>(owner + ((<usize>i) << 2), i);
        store<f64>(simKey + ((<usize>i) << 3), Infinity);
      }
    }
  }
  return n - load<i32>(orderStart + ((<usize>numChunks) << 2));
}

/**
 * One greedy pass at comparison key tauKey (τ·|τ|); returns the number of clusters. With `record`, writes owner[i]
 * and simKey[i] (exact) for every token (protected tokens are singletons).
 *
 * Each chunk remembers its count and the interval (lo, hi] of keys over which every decision of its pass stays the
 * same (lo bounds the rejected similarities from above, hi the accepted ones from below); a counting pass whose key
 * falls inside reuses the count, since the same decisions give the same clusters.
 */
export function pass(tauKey: f64, record: bool): i32 {
  let clusters = recordProtected(record);
  const above = tauKey + margin;
  const below = tauKey - margin;
  // the same decisive bounds as cosines, for four float32 estimates at a time
  const joinAt = f32x4.splat(float32AtLeast(signedRoot(above)));
  const stayBelow = f32x4.splat(float32AtLeast(signedRoot(below)));
  const positive = f32x4.splat(Infinity);
  const negative = f32x4.splat(-Infinity);
  for (let c = 0; c < numChunks; c++) {
    const most = <f64>load<f32>(chunkMax + ((<usize>c) << 2));
    if (most * Math.abs(most) < below) {
      // no pair of the chunk can reach the threshold: every token is a singleton
      const first = load<i32>(orderStart + ((<usize>c) << 2));
      const end = load<i32>(orderStart + ((<usize>(c + 1)) << 2));
      if (record) {
        for (let r = first; r < end; r++) {
          const j = load<i32>(order + ((<usize>r) << 2));
          store<i32>(owner + ((<usize>j) << 2), j);
          store<f64>(simKey + ((<usize>j) << 3), Infinity);
        }
      }
      clusters += end - first;
      continue;
    }
    const cache = chunkCache + ((<usize>c) << 4);
    if (!record && load<f64>(cache) < tauKey && tauKey <= load<f64>(cache, 8)) {
      clusters += load<i32>(chunkCount + ((<usize>c) << 2));
      continue;
    }
    const o = load<i32>(orderStart + ((<usize>c) << 2));
    let len = load<i32>(orderStart + ((<usize>(c + 1)) << 2)) - o;
    memory.copy(remaining, order + ((<usize>o) << 2), (<usize>len) << 2);
    const start = load<i32>(offsets + ((<usize>c) << 2));
    const chunkLen = load<i32>(offsets + ((<usize>(c + 1)) << 2)) - start;
    const base = load<i32>(gramStart + ((<usize>c) << 2));
    let count = 0;
    // the interval, from the extreme screened estimates (± margin) and exact keys; plain comparisons, not f64.min/max
    let lo = -Infinity;
    let hi = Infinity;
    let lowestJoin = positive; // lane-wise extreme estimated cosines of the four-at-a-time path
    let highestStay = negative;
    while (len > 0) {
      const seed = load<i32>(remaining);
      if (record) {
        store<i32>(owner + ((<usize>seed) << 2), seed);
        store<f64>(simKey + ((<usize>seed) << 3), Infinity);
      }
      count++;
      // estimates of the seed against remaining[1..len): a row of the cached matrix, indexed by token
      // (element base + (seed − start)·L + (j − start)), or computed now into `dots`, indexed by r − 1
      let estimateAt: usize;
      let stride: usize;
      if (base >= 0) {
        estimateAt = gram + ((<usize>(base + (seed - start) * chunkLen - start)) << 2);
        stride = 1;
      } else {
        estimates(unit(seed), remaining + 4, 0, len - 1, dots);
        const exactSeed = load<u8>(exactOnly + <usize>seed);
        for (let r = 1; r < len; r++) {
          if ((exactSeed | load<u8>(exactOnly + <usize>load<i32>(remaining + ((<usize>r) << 2)))) !== 0) {
            store<f32>(dots + ((<usize>(r - 1)) << 2), NaN);
          }
        }
        estimateAt = dots - 4;
        stride = 0;
      }
      let kept = 0;
      let r = 1;
      if (stride !== 0 && !record) {
        // counting over a cached row, four tokens at a time; a group with an undecided token goes one by one below
        for (; r + 3 < len; r += 4) {
          const tokens = v128.load(remaining + ((<usize>r) << 2));
          let cosines = f32x4.splat(load<f32>(estimateAt + ((<usize>i32x4.extract_lane(tokens, 0)) << 2)));
          cosines = f32x4.replace_lane(
            cosines,
            1,
            load<f32>(estimateAt + ((<usize>i32x4.extract_lane(tokens, 1)) << 2)),
          );
          cosines = f32x4.replace_lane(
            cosines,
            2,
            load<f32>(estimateAt + ((<usize>i32x4.extract_lane(tokens, 2)) << 2)),
          );
          cosines = f32x4.replace_lane(
            cosines,
            3,
            load<f32>(estimateAt + ((<usize>i32x4.extract_lane(tokens, 3)) << 2)),
          );
          const joins = f32x4.ge(cosines, joinAt);
          const stays = f32x4.lt(cosines, stayBelow);
          if (!v128.all_true<i32>(v128.or(joins, stays))) break;
          lowestJoin = f32x4.pmin(lowestJoin, v128.bitselect(cosines, positive, joins));
          highestStay = f32x4.pmax(highestStay, v128.bitselect(cosines, negative, stays));
          const mask = i32x4.bitmask(stays);
          v128.store(
            remaining + ((<usize>kept) << 2),
            i8x16.swizzle(tokens, v128.load(compactTable + ((<usize>mask) << 4))),
          );
          kept += <i32>popcnt<u32>(mask);
        }
      }
      for (; r < len; r++) {
        const j = load<i32>(remaining + ((<usize>r) << 2));
        const cosine = <f64>load<f32>(estimateAt + ((stride !== 0 ? <usize>j : <usize>r) << 2));
        const estimate = cosine * Math.abs(cosine);
        if (estimate >= above) {
          if (estimate < hi) hi = estimate;
          if (record) {
            store<i32>(owner + ((<usize>j) << 2), seed);
            // the estimate stands in for the exact key; splitting computes exact keys where they matter
            store<f64>(simKey + ((<usize>j) << 3), estimate);
            store<u8>(approximate + <usize>j, 1);
          }
        } else if (estimate < below) {
          if (estimate > lo) lo = estimate;
          store<i32>(remaining + ((<usize>kept) << 2), j);
          kept++;
        } else {
          // near the threshold, or an unscreened row (NaN estimate): decide exactly
          const f = exactSimilarity(seed, j);
          if (f >= tauKey) {
            if (f - margin < hi) hi = f - margin;
            if (record) {
              store<i32>(owner + ((<usize>j) << 2), seed);
              store<f64>(simKey + ((<usize>j) << 3), f);
            }
          } else {
            if (f + margin > lo) lo = f + margin;
            store<i32>(remaining + ((<usize>kept) << 2), j);
            kept++;
          }
        }
      }
      len = kept;
    }
    const join = min(
      min(f32x4.extract_lane(lowestJoin, 0), f32x4.extract_lane(lowestJoin, 1)),
      min(f32x4.extract_lane(lowestJoin, 2), f32x4.extract_lane(lowestJoin, 3)),
    );
    const stay = max(
      max(f32x4.extract_lane(highestStay, 0), f32x4.extract_lane(highestStay, 1)),
      max(f32x4.extract_lane(highestStay, 2), f32x4.extract_lane(highestStay, 3)),
    );
    if (<f64>join * Math.abs(<f64>join) < hi) hi = <f64>join * Math.abs(<f64>join);
    if (<f64>stay * Math.abs(<f64>stay) > lo) lo = <f64>stay * Math.abs(<f64>stay);
    store<f64>(cache, lo + margin);
    store<f64>(cache, hi - margin, 8);
    store<i32>(chunkCount + ((<usize>c) << 2), count);
    clusters += count;
  }
  return clusters;
}

/**
 * One greedy pass comparing with the running centroid (the sum of the members' normalized keys; the cosine to the sum
 * equals the cosine to the mean) at comparison key `limit`. Always writes owner and simKey of members; seeds and
 * protected tokens only with `record`. Scalar float64 loops, in dimension order.
 */
export function passCentroid(limit: f64, record: bool): i32 {
  let clusters = recordProtected(record);
  for (let c = 0; c < numChunks; c++) {
    const o = load<i32>(orderStart + ((<usize>c) << 2));
    let len = load<i32>(orderStart + ((<usize>(c + 1)) << 2)) - o;
    memory.copy(remaining, order + ((<usize>o) << 2), (<usize>len) << 2);
    while (len > 0) {
      const seed = load<i32>(remaining);
      if (record) {
        store<i32>(owner + ((<usize>seed) << 2), seed);
        store<f64>(simKey + ((<usize>seed) << 3), Infinity);
      }
      clusters++;
      const seedRow = row(seed);
      const seedInv = load<f64>(invNorm + ((<usize>seed) << 3));
      let sumSq: f64 = 0;
      for (let k = 0; k < d; k++) {
        const v = <f64>load<f32>(seedRow + ((<usize>k) << 2)) * seedInv;
        store<f64>(centroidSum + ((<usize>k) << 3), v);
        sumSq += v * v;
      }
      let kept = 0;
      for (let r = 1; r < len; r++) {
        const j = load<i32>(remaining + ((<usize>r) << 2));
        const nj = load<f64>(normSq + ((<usize>j) << 3));
        const rowJ = row(j);
        let f: f64;
        if (sumSq === 0 || nj === 0) f = sumSq === nj ? 1 : 0;
        else {
          let dotJ: f64 = 0;
          for (let k = 0; k < d; k++) {
            dotJ += <f64>load<f32>(rowJ + ((<usize>k) << 2)) * load<f64>(centroidSum + ((<usize>k) << 3));
          }
          f = (dotJ * Math.abs(dotJ)) / (nj * sumSq);
        }
        if (f >= limit) {
          store<i32>(owner + ((<usize>j) << 2), seed);
          store<f64>(simKey + ((<usize>j) << 3), f);
          const inv = load<f64>(invNorm + ((<usize>j) << 3));
          sumSq = 0;
          for (let k = 0; k < d; k++) {
            const at = centroidSum + ((<usize>k) << 3);
            const v = load<f64>(at) + <f64>load<f32>(rowJ + ((<usize>k) << 2)) * inv;
            store<f64>(at, v);
            sumSq += v * v;
          }
        } else {
          store<i32>(remaining + ((<usize>kept) << 2), j);
          kept++;
        }
      }
      len = kept;
    }
  }
  return clusters;
}
