/**
 * Greedy Seed-Based Clustering (GSC) of one head's key vectors inside chunks.
 *
 * Similarities are compared as the signed squared cosine `f = dot·|dot| / (|a|²·|b|²)` against `τ·|τ|`: it orders
 * pairs exactly like the cosine, needs no square root, and is exactly 1 for two identical rows (the dot product and the
 * squared norms run through the same summation), so identical keys pass τ = 1 without a tolerance.
 */

import { type SimdDots, simdDots } from './simd-dots.js';

export type SeedOrder = 'position' | 'importance';
export type CompareTo = 'seed' | 'centroid';

export interface GscOptions {
  /** Cosine threshold τ in [−1, 1]; a token joins a cluster when its cosine to the seed (or centroid) is ≥ τ. */
  threshold?: number;
  /** Search τ (regula falsi, see README) so that exactly this many clusters come out (instead of `threshold`). */
  targetClusters?: number;
  /** 'position' (default): seeds in token order; 'importance': most important unassigned token first. */
  seedOrder?: SeedOrder;
  /** Per-token importance (length n), required by `seedOrder: 'importance'`; higher is more important. */
  importance?: Float32Array;
  /** 'seed' (default): members are compared to the seed; 'centroid': to the running mean of normalized members. */
  compareTo?: CompareTo;
  /** Tokens with a nonzero entry stay singletons (attention sinks, the recent window). */
  protectedMask?: Uint8Array;
  /** Upper bound on search steps for τ in target mode (default 24). */
  maxSearchSteps?: number;
}

export interface GscResult {
  /** Cluster id of every token, dense 0..numClusters−1, numbered in order of the seed's position. */
  assignment: Int32Array;
  numClusters: number;
  /** The τ the clusters were built with (the one found in target mode). */
  threshold: number;
  /** Target mode only: members split off as singletons after the search to land exactly on the target (else 0). */
  splitMembers: number;
  /** Target mode only: clustering passes spent searching τ (besides the ones at τ = 1 and the final τ). */
  steps: number;
}

/** τ used when neither `threshold` nor `targetClusters` is given; chosen from the benchmark (see README). */
export const DEFAULT_THRESHOLD = 0.8;
/** Default bound on search steps for τ in target mode. */
export const DEFAULT_MAX_SEARCH_STEPS = 24;
/** Rounding slack (in cosine) of the centroid test, so a copy of the centroid's direction still passes τ = 1. */
export const CENTROID_TOLERANCE = 1e-12;
/** Chunks up to this length get their pairwise similarities cached once in target mode (seed comparison). */
const GRAM_MAX_CHUNK = 256;
/** The search for τ stops once the count is this fraction of the target (or less) below it; splitting closes the rest. */
const SEARCH_SLACK = 1e-3;
/** The search for τ also stops once its bracket is this narrow. */
const TAU_RESOLUTION = 1e-7;

interface Prepared {
  keys: Float32Array;
  n: number;
  d: number;
  offsets: Uint32Array;
  numChunks: number;
  normSq: Float64Array;
  invNorm: Float64Array | null;
  protectedMask: Uint8Array | null;
  /** Unprotected tokens of every chunk, in seed order; chunk c's are order[orderStart[c] .. orderStart[c+1]). */
  order: Int32Array;
  orderStart: Int32Array;
  centroid: boolean;
  /** SIMD dot products (seed comparison); null in centroid mode or where WebAssembly SIMD is unavailable. */
  kernel: SimdDots | null;
  // scratch reused by every pass
  remaining: Int32Array;
  centroidSum: Float64Array;
  owner: Int32Array;
  simKey: Float64Array;
  gram: Float64Array | null;
  gramStart: Float64Array | null;
}

/**
 * Sum of products of two rows in four lanes (k mod 4), combined as (l0 + l1) + (l2 + l3), then the tail: the same
 * order as the SIMD kernel, so both give the same bits and identical rows give identical sums.
 */
export function dotRows(keys: Float32Array, oa: number, ob: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < d; k += 4) {
    s0 += keys[oa + k] * keys[ob + k];
    s1 += keys[oa + k + 1] * keys[ob + k + 1];
    s2 += keys[oa + k + 2] * keys[ob + k + 2];
    s3 += keys[oa + k + 3] * keys[ob + k + 3];
  }
  let sum = s0 + s1 + (s2 + s3);
  for (; k < d; k++) sum += keys[oa + k] * keys[ob + k];
  return sum;
}

/** The comparison key of τ: τ·|τ|, and −∞ at τ = −1 so that rounding can never keep a token out. */
function thresholdKey(tau: number): number {
  return tau <= -1 ? Number.NEGATIVE_INFINITY : tau * Math.abs(tau);
}

function isIntegerIn(x: unknown, lo: number, hi: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
}

function validate(keys: unknown, n: unknown, d: unknown, offsets: unknown, options: GscOptions): void {
  if (!(keys instanceof Float32Array)) throw new TypeError('gscCluster: keys must be a Float32Array');
  if (!isIntegerIn(n, 0, 2 ** 31 - 1)) throw new RangeError(`gscCluster: n must be a non-negative integer, got ${n}`);
  if (!isIntegerIn(d, 1, 2 ** 31 - 1)) throw new RangeError(`gscCluster: d must be a positive integer, got ${d}`);
  if (keys.length !== n * d) {
    throw new RangeError(`gscCluster: keys.length (${keys.length}) must equal n*d (${n}*${d} = ${n * d})`);
  }
  if (!(offsets instanceof Uint32Array)) throw new TypeError('gscCluster: offsets must be a Uint32Array');
  if (offsets.length < 1 || offsets[0] !== 0 || offsets[offsets.length - 1] !== n) {
    throw new RangeError(`gscCluster: offsets must start at 0 and end at n (${n})`);
  }
  for (let c = 1; c < offsets.length; c++) {
    if (offsets[c] <= offsets[c - 1]) {
      throw new RangeError(`gscCluster: offsets must be strictly increasing (offsets[${c}] = ${offsets[c]})`);
    }
  }
  if (options === null || typeof options !== 'object') throw new TypeError('gscCluster: options must be an object');
  const { threshold, targetClusters, seedOrder, importance, compareTo, protectedMask, maxSearchSteps } = options;
  if (threshold !== undefined && targetClusters !== undefined) {
    throw new TypeError('gscCluster: give options.threshold or options.targetClusters, not both');
  }
  if (threshold !== undefined && !(typeof threshold === 'number' && threshold >= -1 && threshold <= 1)) {
    throw new RangeError(`gscCluster: options.threshold must be a number in [-1, 1], got ${threshold}`);
  }
  if (targetClusters !== undefined && !isIntegerIn(targetClusters, 0, Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`gscCluster: options.targetClusters must be a non-negative integer, got ${targetClusters}`);
  }
  if (seedOrder !== undefined && seedOrder !== 'position' && seedOrder !== 'importance') {
    throw new TypeError(`gscCluster: options.seedOrder must be 'position' or 'importance', got ${String(seedOrder)}`);
  }
  if (compareTo !== undefined && compareTo !== 'seed' && compareTo !== 'centroid') {
    throw new TypeError(`gscCluster: options.compareTo must be 'seed' or 'centroid', got ${String(compareTo)}`);
  }
  if (seedOrder === 'importance') {
    if (!(importance instanceof Float32Array)) {
      throw new TypeError("gscCluster: options.importance (Float32Array) is required by seedOrder 'importance'");
    }
  }
  if (importance !== undefined) {
    if (!(importance instanceof Float32Array))
      throw new TypeError('gscCluster: options.importance must be a Float32Array');
    if (importance.length !== n) {
      throw new RangeError(`gscCluster: options.importance.length (${importance.length}) must equal n (${n})`);
    }
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(importance[i])) {
        throw new RangeError(`gscCluster: options.importance[${i}] is not finite (${importance[i]})`);
      }
    }
  }
  if (protectedMask !== undefined) {
    if (!(protectedMask instanceof Uint8Array)) {
      throw new TypeError('gscCluster: options.protectedMask must be a Uint8Array');
    }
    if (protectedMask.length !== n) {
      throw new RangeError(`gscCluster: options.protectedMask.length (${protectedMask.length}) must equal n (${n})`);
    }
  }
  if (maxSearchSteps !== undefined && !isIntegerIn(maxSearchSteps, 1, 1000)) {
    throw new RangeError(`gscCluster: options.maxSearchSteps must be an integer in [1, 1000], got ${maxSearchSteps}`);
  }
}

function prepare(keys: Float32Array, n: number, d: number, offsets: Uint32Array, options: GscOptions): Prepared {
  const numChunks = offsets.length - 1;
  const centroid = options.compareTo === 'centroid';
  const normSq = new Float64Array(n);
  let maxChunk = 0;
  for (let c = 0; c < numChunks; c++) maxChunk = Math.max(maxChunk, offsets[c + 1] - offsets[c]);
  let kernel = centroid ? null : simdDots();
  // The kernel reads the indices to compare straight from `remaining`, which lives in its memory.
  if (kernel !== null && !kernel.load(keys, n, maxChunk)) kernel = null;
  if (kernel !== null) kernel.squaredNorms(n, d, normSq);
  else for (let i = 0; i < n; i++) normSq[i] = dotRows(keys, i * d, i * d, d);
  const invNorm = centroid ? new Float64Array(n) : null;
  for (let i = 0; i < n; i++) {
    const s = normSq[i];
    // Squares of finite float32 values cannot overflow float64, so a non-finite sum means NaN or ±Inf in the row.
    if (!Number.isFinite(s)) throw new RangeError(`gscCluster: keys row ${i} contains NaN or Infinity`);
    if (invNorm !== null) invNorm[i] = s > 0 ? 1 / Math.sqrt(s) : 0;
  }
  const protectedMask = options.protectedMask ?? null;
  const order = new Int32Array(n);
  const orderStart = new Int32Array(numChunks + 1);
  let w = 0;
  for (let c = 0; c < numChunks; c++) {
    orderStart[c] = w;
    const start = offsets[c];
    const end = offsets[c + 1];
    for (let i = start; i < end; i++) if (protectedMask === null || protectedMask[i] === 0) order[w++] = i;
    if (options.seedOrder === 'importance') {
      const importance = options.importance!;
      order.subarray(orderStart[c], w).sort((a, b) => importance[b] - importance[a] || a - b);
    }
  }
  orderStart[numChunks] = w;
  return {
    keys,
    n,
    d,
    offsets,
    numChunks,
    normSq,
    invNorm,
    protectedMask,
    order,
    orderStart,
    centroid,
    kernel,
    remaining: kernel !== null ? kernel.index : new Int32Array(maxChunk),
    centroidSum: new Float64Array(d),
    owner: new Int32Array(n),
    simKey: new Float64Array(n),
    gram: null,
    gramStart: null,
  };
}

/** Caches, for every chunk of at most GRAM_MAX_CHUNK tokens, the pairwise keys of all its tokens (row-major L×L). */
function buildGram(p: Prepared): void {
  const { offsets, numChunks, keys, normSq, d } = p;
  let total = 0;
  const gramStart = new Float64Array(numChunks);
  for (let c = 0; c < numChunks; c++) {
    const len = offsets[c + 1] - offsets[c];
    gramStart[c] = len <= GRAM_MAX_CHUNK ? total : -1;
    if (len <= GRAM_MAX_CHUNK) total += len * len;
  }
  const gram = new Float64Array(total);
  for (let c = 0; c < numChunks; c++) {
    if (gramStart[c] < 0) continue;
    const start = offsets[c];
    const len = offsets[c + 1] - start;
    const base = gramStart[c];
    const kernel = p.kernel;
    for (let a = 0; a < len; a++) {
      const na = normSq[start + a];
      if (kernel !== null) {
        for (let b = a + 1; b < len; b++) kernel.index[b - a - 1] = start + b;
        kernel.run(start + a, 0, len - a - 1, d);
      }
      for (let b = a + 1; b < len; b++) {
        const nb = normSq[start + b];
        let f: number;
        if (na === 0 || nb === 0) f = na === nb ? 1 : 0;
        else {
          const dot = kernel !== null ? kernel.out[b - a - 1] : dotRows(keys, (start + a) * d, (start + b) * d, d);
          f = (dot * Math.abs(dot)) / (na * nb);
        }
        gram[base + a * len + b] = f;
        gram[base + b * len + a] = f;
      }
    }
  }
  p.gram = gram;
  p.gramStart = gramStart;
}

/**
 * One greedy pass at threshold τ; returns the number of clusters. With `record` (always in centroid mode and in chunks
 * without a cached Gram matrix), writes owner[i] (the seed token of i's cluster) and simKey[i] (the similarity key
 * with which i joined; +∞ for seeds).
 */
function runPass(p: Prepared, tau: number, record: boolean): number {
  const tauKey = thresholdKey(tau);
  const centroidKey = thresholdKey(tau - CENTROID_TOLERANCE);
  const { keys, d, offsets, numChunks, normSq, order, orderStart, remaining, owner, simKey, protectedMask } = p;
  // protected tokens are the ones missing from `order`: each is a singleton
  let clusters = p.n - orderStart[numChunks];
  if (protectedMask !== null && record) {
    for (let i = 0; i < p.n; i++) {
      if (protectedMask[i] !== 0) {
        owner[i] = i;
        simKey[i] = Number.POSITIVE_INFINITY;
      }
    }
  }
  for (let c = 0; c < numChunks; c++) {
    let len = orderStart[c + 1] - orderStart[c];
    const gramBase = p.gramStart !== null ? p.gramStart[c] : -1;
    for (let r = 0, o = orderStart[c]; r < len; r++) remaining[r] = order[o + r];
    const start = offsets[c];
    const chunkLen = offsets[c + 1] - start;
    while (len > 0) {
      const seed = remaining[0];
      if (record) {
        owner[seed] = seed;
        simKey[seed] = Number.POSITIVE_INFINITY;
      }
      clusters++;
      let kept = 0;
      if (p.centroid) {
        kept = gatherByCentroid(p, seed, len, centroidKey);
      } else if (gramBase >= 0) {
        const gram = p.gram!;
        const row = gramBase + (seed - start) * chunkLen - start;
        if (record) {
          for (let r = 1; r < len; r++) {
            const j = remaining[r];
            const f = gram[row + j];
            if (f >= tauKey) {
              owner[j] = seed;
              simKey[j] = f;
            } else remaining[kept++] = j;
          }
        } else {
          // a search pass only counts clusters
          for (let r = 1; r < len; r++) {
            const j = remaining[r];
            if (gram[row + j] < tauKey) remaining[kept++] = j;
          }
        }
      } else {
        const ns = normSq[seed];
        const os = seed * d;
        const kernel = p.kernel;
        if (kernel !== null) kernel.run(seed, 1, len - 1, d);
        for (let r = 1; r < len; r++) {
          const j = remaining[r];
          const nj = normSq[j];
          let f: number;
          if (ns === 0 || nj === 0) f = ns === nj ? 1 : 0;
          else {
            const dot = kernel !== null ? kernel.out[r - 1] : dotRows(keys, os, j * d, d);
            f = (dot * Math.abs(dot)) / (ns * nj);
          }
          if (f >= tauKey) {
            owner[j] = seed;
            simKey[j] = f;
          } else remaining[kept++] = j;
        }
      }
      len = kept;
    }
  }
  return clusters;
}

/** Centroid comparison: the running sum of normalized members; cosine to the sum equals cosine to the mean. */
function gatherByCentroid(p: Prepared, seed: number, len: number, limit: number): number {
  const { keys, d, normSq, remaining, owner, simKey, centroidSum } = p;
  const invNorm = p.invNorm!;
  const os = seed * d;
  let sumSq = 0;
  for (let k = 0; k < d; k++) {
    const v = keys[os + k] * invNorm[seed];
    centroidSum[k] = v;
    sumSq += v * v;
  }
  let kept = 0;
  for (let r = 1; r < len; r++) {
    const j = remaining[r];
    const nj = normSq[j];
    const oj = j * d;
    let f: number;
    if (sumSq === 0 || nj === 0) f = sumSq === nj ? 1 : 0;
    else {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += keys[oj + k] * centroidSum[k];
      f = (dot * Math.abs(dot)) / (nj * sumSq);
    }
    if (f >= limit) {
      owner[j] = seed;
      simKey[j] = f;
      const inv = invNorm[j];
      sumSq = 0;
      for (let k = 0; k < d; k++) {
        const v = centroidSum[k] + keys[oj + k] * inv;
        centroidSum[k] = v;
        sumSq += v * v;
      }
    } else remaining[kept++] = j;
  }
  return kept;
}

/** Turns the smallest-similarity members into singletons until `count` reaches `target`. Returns how many split. */
function splitWeakestMembers(p: Prepared, count: number, target: number): number {
  const { owner, simKey, n } = p;
  let need = target - count;
  if (need <= 0) return 0;
  let members = 0;
  for (let i = 0; i < n; i++) if (owner[i] !== i) members++;
  const keys = new Float64Array(members);
  let w = 0;
  for (let i = 0; i < n; i++) if (owner[i] !== i) keys[w++] = simKey[i];
  keys.sort();
  const cut = keys[need - 1];
  const split = need;
  for (let i = 0; i < n && need > 0; i++) {
    if (owner[i] !== i && simKey[i] < cut) {
      owner[i] = i;
      need--;
    }
  }
  for (let i = 0; i < n && need > 0; i++) {
    if (owner[i] !== i && simKey[i] === cut) {
      owner[i] = i;
      need--;
    }
  }
  return split;
}

/** Dense cluster ids numbered by seed position; a member's id is its seed's. */
function numberBySeedPosition(owner: Int32Array, n: number): { assignment: Int32Array; numClusters: number } {
  const assignment = new Int32Array(n);
  let next = 0;
  for (let i = 0; i < n; i++) if (owner[i] === i) assignment[i] = next++;
  for (let i = 0; i < n; i++) if (owner[i] !== i) assignment[i] = assignment[owner[i]];
  return { assignment, numClusters: next };
}

/**
 * The fewest clusters any τ can give: each chunk's protected tokens plus one cluster for the rest of the chunk.
 * `targetClusters` below this is rejected.
 */
export function minClusters(n: number, offsets: Uint32Array, protectedMask?: Uint8Array): number {
  let total = 0;
  for (let c = 0; c + 1 < offsets.length; c++) {
    let free = 0;
    for (let i = offsets[c]; i < offsets[c + 1]; i++) {
      if (protectedMask !== undefined && protectedMask[i] !== 0) total++;
      else free++;
    }
    if (free > 0) total++;
  }
  return n === 0 ? 0 : total;
}

/**
 * Greedy Seed-Based Clustering of one head's keys (n × d, row-major) inside the chunks given by `offsets`
 * (chunk c = [offsets[c], offsets[c+1])). In each chunk the next unassigned token in seed order becomes a seed, and
 * every unassigned token whose cosine to the seed (or the running centroid) is ≥ τ joins it; repeat until none is left.
 */
export function gscCluster(
  keys: Float32Array,
  n: number,
  d: number,
  offsets: Uint32Array,
  options: GscOptions = {},
): GscResult {
  validate(keys, n, d, offsets, options);
  const p = prepare(keys, n, d, offsets, options);
  const target = options.targetClusters;
  if (target === undefined) {
    const threshold = options.threshold ?? DEFAULT_THRESHOLD;
    runPass(p, threshold, true);
    return { ...numberBySeedPosition(p.owner, n), threshold, splitMembers: 0, steps: 0 };
  }

  const lowest = minClusters(n, offsets, p.protectedMask ?? undefined);
  if (target < lowest || target > n) {
    throw new RangeError(
      `gscCluster: options.targetClusters (${target}) must lie in [${lowest}, ${n}] (protected tokens and one cluster per chunk, up to n)`,
    );
  }
  if (!p.centroid) buildGram(p);
  const maxSteps = options.maxSearchSteps ?? DEFAULT_MAX_SEARCH_STEPS;
  // Invariant: count(bestTau) ≤ target. τ = −1 gives exactly `lowest`, so it is a valid start.
  let bestTau = -1;
  let bestCount = lowest;
  let steps = 0;
  const countAtOne = runPass(p, 1, false);
  if (countAtOne <= target) {
    bestTau = 1;
    bestCount = countAtOne;
  } else if (bestCount < target) {
    // Illinois regula falsi on count(τ) − target: the count is a near-smooth step function of τ, so interpolation
    // needs far fewer passes than halving. It is not monotone for the greedy scheme, so the bracket is only a guide:
    // keep the best τ seen and stop after maxSteps.
    let lo = -1;
    let hi = 1;
    let fLo = lowest - target;
    let fHi = countAtOne - target;
    let side = 0;
    // Close enough: the last few clusters come from splitting the weakest members, as a slightly higher τ would.
    const slack = Math.floor(target * SEARCH_SLACK);
    while (steps < maxSteps && hi - lo > TAU_RESOLUTION) {
      let mid = lo - (fLo * (hi - lo)) / (fHi - fLo);
      if (!(mid > lo && mid < hi)) mid = (lo + hi) / 2;
      const count = runPass(p, mid, false);
      steps++;
      if (count <= target && count >= bestCount) {
        bestTau = mid;
        bestCount = count;
      }
      if (count <= target && target - count <= slack) break;
      if (count < target) {
        lo = mid;
        fLo = count - target;
        if (side === -1) fHi /= 2;
        side = -1;
      } else {
        hi = mid;
        fHi = count - target;
        if (side === 1) fLo /= 2;
        side = 1;
      }
    }
  }
  const count = runPass(p, bestTau, true);
  const splitMembers = splitWeakestMembers(p, count, target);
  return { ...numberBySeedPosition(p.owner, n), threshold: bestTau, splitMembers, steps };
}
