/**
 * Greedy Seed-Based Clustering (GSC) of one head's key vectors inside chunks.
 *
 * Similarities are compared as the signed squared cosine `f = dot·|dot| / (|a|²·|b|²)` against `τ·|τ|`: it orders
 * pairs exactly like the cosine, needs no square root, and is exactly 1 for two identical rows (the dot product and the
 * squared norms run through the same summation), so identical keys pass τ = 1 without a tolerance.
 */

import { isIntegerIn } from '@semanticache/internal';
import { type GscExports, Layout } from './gsc-simd.js';

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
/** The cache stops growing here (longer inputs compute the rest on every pass, with the same results). */
const GRAM_MAX_BYTES = 2 ** 30;
/** The search for τ stops once the count is this fraction of the target (or less) below it; splitting closes the rest. */
const SEARCH_SLACK = 1e-3;
/** The search for τ also stops once its bracket is this narrow. */
const TAU_RESOLUTION = 1e-7;

interface Prepared {
  n: number;
  centroid: boolean;
  simd: GscExports;
  /** Views into the module's memory, valid until the next call. */
  owner: Int32Array;
  simKey: Float64Array;
  /** 1 where simKey is a screened estimate rather than the exact key (record passes of seed comparison). */
  approximate: Uint8Array;
}

/** The comparison key of τ: τ·|τ|, and −∞ at τ = −1 so that rounding can never keep a token out. */
function thresholdKey(tau: number): number {
  return tau <= -1 ? Number.NEGATIVE_INFINITY : tau * Math.abs(tau);
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

/**
 * Lays out keys, chunks and seed order in the module's memory, computes squared norms (rejecting NaN/±Inf rows) and,
 * with `withGram`, caches each short chunk's pairwise similarities for the τ search.
 */
function prepare(
  keys: Float32Array,
  n: number,
  d: number,
  offsets: Uint32Array,
  options: GscOptions,
  withGram: boolean,
): Prepared {
  const numChunks = offsets.length - 1;
  const centroid = options.compareTo === 'centroid';
  const protectedMask = options.protectedMask ?? null;
  let maxChunk = 0;
  for (let c = 0; c < numChunks; c++) maxChunk = Math.max(maxChunk, offsets[c + 1] - offsets[c]);
  const gramStart = new Int32Array(numChunks).fill(-1);
  let gramElements = 0;
  if (withGram && !centroid) {
    for (let c = 0; c < numChunks; c++) {
      const len = offsets[c + 1] - offsets[c];
      if (len > GRAM_MAX_CHUNK || (gramElements + len * len) * 4 > GRAM_MAX_BYTES) continue;
      gramStart[c] = gramElements;
      gramElements += len * len;
    }
  }

  const layout = new Layout();
  const keysAt = layout.take(n * d * 4);
  const normSqAt = layout.take(n * 8);
  const offsetsAt = layout.take((numChunks + 1) * 4);
  const orderAt = layout.take(n * 4);
  const orderStartAt = layout.take((numChunks + 1) * 4);
  const remainingAt = layout.take(maxChunk * 4);
  const ownerAt = layout.take(n * 4);
  const simKeyAt = layout.take(n * 8);
  const gramStartAt = layout.take(numChunks * 4);
  const maskAt = protectedMask !== null ? layout.take(n) : 0;
  const dotsAt = layout.take((maxChunk + 3) * 4); // written in groups of four
  const invNormAt = centroid ? layout.take(n * 8) : 0;
  const centroidSumAt = layout.take(d * 8);
  const gramAt = layout.take(gramElements * 4);
  const unitsAt = centroid ? 0 : layout.take(n * Math.ceil(d / 8) * 16);
  const exactOnlyAt = layout.take(n);
  const chunkCacheAt = layout.take(numChunks * 16);
  const chunkCountAt = layout.take(numChunks * 4);
  const chunkMaxAt = layout.take(numChunks * 4);
  const compactTableAt = layout.take(256);
  const approximateAt = layout.take(n);
  const { exports: simd, buffer } = layout.instance('gscCluster');

  new Float32Array(buffer, keysAt, n * d).set(keys);
  new Uint32Array(buffer, offsetsAt, numChunks + 1).set(offsets);
  new Int32Array(buffer, gramStartAt, numChunks).set(gramStart);
  if (protectedMask !== null) new Uint8Array(buffer, maskAt, n).set(protectedMask);
  const order = new Int32Array(buffer, orderAt, n);
  const orderStart = new Int32Array(buffer, orderStartAt, numChunks + 1);
  let w = 0;
  for (let c = 0; c < numChunks; c++) {
    orderStart[c] = w;
    for (let i = offsets[c]; i < offsets[c + 1]; i++)
      if (protectedMask === null || protectedMask[i] === 0) order[w++] = i;
    if (options.seedOrder === 'importance') {
      const importance = options.importance!;
      order.subarray(orderStart[c], w).sort((a, b) => importance[b] - importance[a] || a - b);
    }
  }
  orderStart[numChunks] = w;

  simd.setup(
    keysAt,
    d,
    n,
    normSqAt,
    offsetsAt,
    numChunks,
    orderAt,
    orderStartAt,
    remainingAt,
    ownerAt,
    simKeyAt,
    gramAt,
    gramStartAt,
    maskAt,
    dotsAt,
    invNormAt,
    centroidSumAt,
    unitsAt,
    exactOnlyAt,
    chunkCacheAt,
    chunkCountAt,
    chunkMaxAt,
    compactTableAt,
    approximateAt,
  );
  // Squares of finite float32 values cannot overflow float64, so a non-finite sum means NaN or ±Inf in the row.
  const bad = simd.squaredNorms();
  if (bad >= 0) throw new RangeError(`gscCluster: keys row ${bad} contains NaN or Infinity`);
  if (gramElements > 0) simd.buildGram();
  return {
    n,
    centroid,
    simd,
    owner: new Int32Array(buffer, ownerAt, n),
    simKey: new Float64Array(buffer, simKeyAt, n),
    approximate: new Uint8Array(buffer, approximateAt, n).fill(0),
  };
}

/**
 * One greedy pass at threshold τ; returns the number of clusters. With `record`, writes owner[i] (the seed token of
 * i's cluster) and simKey[i] (the similarity key with which i joined; +∞ for seeds) for every token.
 */
function runPass(p: Prepared, tau: number, record: boolean): number {
  return p.centroid
    ? p.simd.passCentroid(thresholdKey(tau - CENTROID_TOLERANCE), record ? 1 : 0)
    : p.simd.pass(thresholdKey(tau), record ? 1 : 0);
}

/** The k-th smallest value (0-based) of `values`, which it reorders (Hoare selection, median-of-three pivots). */
export function kthSmallest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    const a = values[lo];
    const b = values[mid];
    const c = values[hi];
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c)); // median of three
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i++] = values[j];
        values[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k];
  }
  return values[k];
}

/** Turns the smallest-similarity members into singletons until `count` reaches `target`. Returns how many split. */
function splitWeakestMembers(p: Prepared, count: number, target: number): number {
  const { owner, simKey, approximate, n, simd } = p;
  let need = target - count;
  if (need <= 0) return 0;
  let members = 0;
  for (let i = 0; i < n; i++) if (owner[i] !== i) members++;
  const keys = new Float64Array(members);
  let w = 0;
  for (let i = 0; i < n; i++) if (owner[i] !== i) keys[w++] = simKey[i];
  // Screened members carry estimates within `margin` of their exact keys. Every member whose exact key is at most
  // the exact cut has an estimate at most this bound, so exact keys there decide the same cut and the same splits.
  const bound = kthSmallest(keys, need - 1) + 2 * simd.screeningMargin();
  w = 0;
  for (let i = 0; i < n; i++) {
    if (owner[i] === i) continue;
    if (approximate[i] !== 0 && simKey[i] <= bound) {
      simKey[i] = simd.exactKey(i);
      approximate[i] = 0;
    }
    keys[w++] = simKey[i];
  }
  const cut = kthSmallest(keys, need - 1);
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
  const target = options.targetClusters;
  if (target === undefined) {
    const p = prepare(keys, n, d, offsets, options, false);
    const threshold = options.threshold ?? DEFAULT_THRESHOLD;
    runPass(p, threshold, true);
    return { ...numberBySeedPosition(p.owner, n), threshold, splitMembers: 0, steps: 0 };
  }

  const lowest = minClusters(n, offsets, options.protectedMask);
  if (target < lowest || target > n) {
    throw new RangeError(
      `gscCluster: options.targetClusters (${target}) must lie in [${lowest}, ${n}] (protected tokens and one cluster per chunk, up to n)`,
    );
  }
  const p = prepare(keys, n, d, offsets, options, true);
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
