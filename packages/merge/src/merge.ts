/**
 * Clusters → semantic cores: the weighted mean of each cluster's keys and values, sizes added.
 * Means accumulate in float64, since a core can stand for thousands of tokens. Inputs are validated here; the means
 * are computed by a WebAssembly SIMD module (assembly/merge.ts, compiled into merge.wasm.ts).
 */

import { isIntegerIn, WasmInstances, type WasmMemory } from '@semanticache/internal';
import { wasmBase64 } from './merge.wasm.js';

export type PositionMode = 'mean' | 'first';

export interface MergeInput {
  /** n × d, row-major. */
  keys: Float32Array;
  /** n × d, row-major. */
  values: Float32Array;
  /** How many original tokens each entry already stands for (default 1 each); must be finite and > 0. */
  sizes?: Float32Array;
  /** Each entry's position (default its index); any typed array of length n. */
  positions?: Float64Array | Float32Array | Int32Array | Uint32Array;
  n: number;
  d: number;
  /** Cluster id of every entry, in [0, numClusters); every cluster must have at least one member. */
  assignment: Int32Array;
  numClusters: number;
  /** Replaces the size weighting of the key/value means (e.g. attention importance); finite and ≥ 0. */
  weights?: Float32Array | Float64Array;
  /** 'mean' (default): size-weighted mean position; 'first': position of the cluster's lowest-index member. */
  positionMode?: PositionMode;
}

export interface Cores {
  /** k × d */
  keys: Float32Array;
  /** k × d */
  values: Float32Array;
  /** Sum of the members' sizes. */
  sizes: Float32Array;
  positions: Float64Array;
  /** Sum of the members' `weights` (the sizes when none were given); pass it back as `weights` to merge cores again. */
  weights: Float64Array;
}

function validate(input: MergeInput): void {
  if (input === null || typeof input !== 'object') throw new TypeError('mergeClusters: input must be an object');
  const { keys, values, sizes, positions, n, d, assignment, numClusters, weights, positionMode } = input;
  if (!isIntegerIn(n, 0, 2 ** 31 - 1))
    throw new RangeError(`mergeClusters: n must be a non-negative integer, got ${n}`);
  if (!isIntegerIn(d, 1, 2 ** 31 - 1)) throw new RangeError(`mergeClusters: d must be a positive integer, got ${d}`);
  if (!(keys instanceof Float32Array)) throw new TypeError('mergeClusters: keys must be a Float32Array');
  if (!(values instanceof Float32Array)) throw new TypeError('mergeClusters: values must be a Float32Array');
  if (keys.length !== n * d)
    throw new RangeError(`mergeClusters: keys.length (${keys.length}) must equal n*d (${n * d})`);
  if (values.length !== n * d) {
    throw new RangeError(`mergeClusters: values.length (${values.length}) must equal n*d (${n * d})`);
  }
  if (!(assignment instanceof Int32Array)) throw new TypeError('mergeClusters: assignment must be an Int32Array');
  if (assignment.length !== n) {
    throw new RangeError(`mergeClusters: assignment.length (${assignment.length}) must equal n (${n})`);
  }
  if (!isIntegerIn(numClusters, 0, n)) {
    throw new RangeError(`mergeClusters: numClusters must be an integer in [0, n = ${n}], got ${numClusters}`);
  }
  if (n > 0 && numClusters === 0) throw new RangeError('mergeClusters: numClusters must be ≥ 1 when n > 0');
  if (sizes !== undefined) {
    if (!(sizes instanceof Float32Array)) throw new TypeError('mergeClusters: sizes must be a Float32Array');
    if (sizes.length !== n) throw new RangeError(`mergeClusters: sizes.length (${sizes.length}) must equal n (${n})`);
    for (let i = 0; i < n; i++) {
      const s = sizes[i];
      if (!(s > 0 && s < Number.POSITIVE_INFINITY)) {
        throw new RangeError(`mergeClusters: sizes[${i}] must be finite and > 0, got ${s}`);
      }
    }
  }
  if (positions !== undefined) {
    if (!ArrayBuffer.isView(positions) || positions instanceof DataView) {
      throw new TypeError('mergeClusters: positions must be a typed array');
    }
    if (positions.length !== n) {
      throw new RangeError(`mergeClusters: positions.length (${positions.length}) must equal n (${n})`);
    }
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(positions[i])) throw new RangeError(`mergeClusters: positions[${i}] is not finite`);
    }
  }
  if (weights !== undefined) {
    if (!(weights instanceof Float32Array || weights instanceof Float64Array)) {
      throw new TypeError('mergeClusters: weights must be a Float32Array or Float64Array');
    }
    if (weights.length !== n) {
      throw new RangeError(`mergeClusters: weights.length (${weights.length}) must equal n (${n})`);
    }
    for (let i = 0; i < n; i++) {
      const w = weights[i];
      if (!(w >= 0 && w < Number.POSITIVE_INFINITY)) {
        throw new RangeError(`mergeClusters: weights[${i}] must be finite and ≥ 0, got ${w}`);
      }
    }
  }
  if (positionMode !== undefined && positionMode !== 'mean' && positionMode !== 'first') {
    throw new TypeError(`mergeClusters: positionMode must be 'mean' or 'first', got ${String(positionMode)}`);
  }
}

/** The compiled module (assembly/merge.ts). */
interface MergeExports {
  /** Means of clusters' rows into dst; returns the first cluster whose mean is not finite, or -1. */
  meanRows(
    src: number,
    dst: number,
    members: number,
    start: number,
    weight: number,
    inv: number,
    k: number,
    d: number,
  ): number;
}

/** One instance and its memory are kept between calls up to 64 MiB; a call that needs more gets one of its own. */
const instances = new WasmInstances<MergeExports>(wasmBase64);

/** An instance whose memory holds at least `bytes`. */
function instanceWith(bytes: number, n: number, d: number): { memory: WasmMemory; exports: MergeExports } {
  return instances.holding(bytes, (cause) => {
    const message = `mergeClusters: n = ${n}, d = ${d} needs ${bytes} bytes of WebAssembly memory, more than available`;
    return new RangeError(message, { cause });
  });
}

const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * Throws the error for cluster c, whose mean came out NaN or ±Inf: the first non-finite member row of keys, else of
 * values; with finite rows, the weights overflowed.
 */
function throwNonFinite(input: MergeInput, members: Int32Array, from: number, to: number, c: number): never {
  const { keys, values, sizes, weights, d } = input;
  for (const [name, rows] of [
    ['keys', keys],
    ['values', values],
  ] as const) {
    for (let m = from; m < to; m++) {
      const o = members[m] * d;
      for (let j = 0; j < d; j++) {
        if (!Number.isFinite(rows[o + j]))
          throw new RangeError(`mergeClusters: ${name} row ${members[m]} is not finite`);
      }
    }
  }
  let sizeSum = 0;
  let givenWeightSum = 0;
  for (let m = from; m < to; m++) {
    sizeSum += sizes === undefined ? 1 : sizes[members[m]];
    if (weights !== undefined) givenWeightSum += weights[members[m]];
  }
  const weightSum = givenWeightSum > 0 ? givenWeightSum : sizeSum;
  if (1 / weightSum === Number.POSITIVE_INFINITY) {
    throw new RangeError(
      `mergeClusters: weights too small, the weights of cluster ${c} sum to ${weightSum}, whose reciprocal overflows`,
    );
  }
  throw new RangeError(`mergeClusters: weights too large, the weighted mean of cluster ${c} overflows`);
}

/**
 * Merges every cluster into one core: weighted mean of keys and of values (weights = sizes, or `weights` when
 * given; a cluster whose weights sum to 0 falls back to its sizes), sizes added, positions by `positionMode`.
 * Core c is cluster c. Merging cores again (with their `sizes`, `positions` and `weights`) equals merging all their
 * tokens at once, up to float rounding.
 *
 * A cluster's mean is, per dimension, (((w0·x0 + w1·x1) + w2·x2) + …) · (1 / Σw) in float64 over its members in index
 * order, rounded once to float32; a cluster of one member is its row, bit for bit. The means are computed by a
 * WebAssembly SIMD module (assembly/merge.ts) in one memory kept between calls.
 */
export function mergeClusters(input: MergeInput): Cores {
  validate(input);
  const { keys, values, sizes, positions, n, d, assignment, numClusters: k, weights } = input;
  const first = input.positionMode === 'first';

  // Counting sort of the entries by cluster; every id is checked before the module sees it.
  const start = new Int32Array(k + 1);
  for (let i = 0; i < n; i++) {
    const c = assignment[i];
    if (c < 0 || c >= k) throw new RangeError(`mergeClusters: assignment[${i}] = ${c} is outside [0, ${k})`);
    start[c + 1]++;
  }
  for (let c = 0; c < k; c++) {
    if (start[c + 1] === 0) throw new RangeError(`mergeClusters: cluster ${c} has no members in assignment`);
    start[c + 1] += start[c];
  }

  const outSizes = new Float32Array(k);
  const outPositions = new Float64Array(k);
  const outWeights = new Float64Array(k);
  if (n === 0) {
    const empty = { sizes: outSizes, positions: outPositions, weights: outWeights };
    return { keys: new Float32Array(0), values: new Float32Array(0), ...empty };
  }

  // Module memory: member weights (f64), 1 / Σw per cluster (f64), start, members, the input rows, the means.
  const weightAt = 0;
  const invAt = weightAt + align16(8 * n);
  const startAt = invAt + align16(8 * k);
  const membersAt = startAt + align16(4 * (k + 1));
  const rowsAt = membersAt + align16(4 * n);
  const meansAt = rowsAt + align16(4 * n * d);
  const simd = instanceWith(meansAt + 4 * k * d, n, d);
  const { buffer } = simd.memory;
  const memberWeight = new Float64Array(buffer, weightAt, n);
  const inv = new Float64Array(buffer, invAt, k);
  new Int32Array(buffer, startAt, k + 1).set(start);
  const members = new Int32Array(buffer, membersAt, n);
  const fill = start.slice(0, k);
  for (let i = 0; i < n; i++) members[fill[assignment[i]]++] = i;

  for (let c = 0; c < k; c++) {
    const from = start[c];
    const to = start[c + 1];
    if (to - from === 1) {
      // the module copies a single member's row; its weights are not read
      const i = members[from];
      const s = sizes === undefined ? 1 : sizes[i];
      outSizes[c] = s;
      outPositions[c] = positions === undefined ? i : positions[i];
      outWeights[c] = weights === undefined ? s : weights[i];
      continue;
    }
    let sizeSum = 0;
    let positionSum = 0;
    let givenWeightSum = 0;
    for (let m = from; m < to; m++) {
      const i = members[m];
      const s = sizes === undefined ? 1 : sizes[i];
      sizeSum += s;
      positionSum += s * (positions === undefined ? i : positions[i]);
      if (weights !== undefined) givenWeightSum += weights[i];
    }
    const useWeights = givenWeightSum > 0;
    for (let m = from; m < to; m++) {
      const i = members[m];
      memberWeight[m] = useWeights ? weights![i] : sizes === undefined ? 1 : sizes[i];
    }
    // Σw = ∞ would make every finite mean 0, and 1 / Σw = ∞ would make it ∞ or NaN: NaN flags both as overflow.
    const reciprocal = 1 / (useWeights ? givenWeightSum : sizeSum);
    inv[c] = reciprocal > 0 && reciprocal < Number.POSITIVE_INFINITY ? reciprocal : Number.NaN;
    outSizes[c] = sizeSum;
    outWeights[c] = weights === undefined ? sizeSum : givenWeightSum;
    if (first) {
      // members are in index order within a cluster (stable counting sort)
      const i = members[from];
      outPositions[c] = positions === undefined ? i : positions[i];
    } else outPositions[c] = positionSum / sizeSum;
  }

  // Keys, then values, through the same rows and means. A non-finite mean means a non-finite member row (NaN and ±Inf
  // survive a weighted mean, and a singleton is copied) or weights that overflow.
  const rows = new Float32Array(buffer, rowsAt, n * d);
  const means = new Float32Array(buffer, meansAt, k * d);
  rows.set(keys);
  const badKey = simd.exports.meanRows(rowsAt, meansAt, membersAt, startAt, weightAt, invAt, k, d);
  const outKeys = badKey < 0 ? means.slice() : null;
  rows.set(values);
  const badValue = simd.exports.meanRows(rowsAt, meansAt, membersAt, startAt, weightAt, invAt, k, d);
  if (outKeys === null || badValue >= 0) {
    const c = badKey < 0 || (badValue >= 0 && badValue < badKey) ? badValue : badKey;
    throwNonFinite(input, members, start[c], start[c + 1], c);
  }
  return { keys: outKeys, values: means.slice(), sizes: outSizes, positions: outPositions, weights: outWeights };
}

/** ln(size) of every entry: the additive logit bias of proportional attention. Sizes must be finite and > 0. */
export function logSizes(sizes: Float32Array, out?: Float32Array): Float32Array {
  if (!(sizes instanceof Float32Array)) throw new TypeError('logSizes: sizes must be a Float32Array');
  const result = out ?? new Float32Array(sizes.length);
  if (!(result instanceof Float32Array) || result.length !== sizes.length) {
    throw new RangeError(`logSizes: out must be a Float32Array of length ${sizes.length}`);
  }
  for (let i = 0; i < sizes.length; i++) {
    const s = sizes[i];
    if (!(s > 0 && s < Number.POSITIVE_INFINITY)) {
      throw new RangeError(`logSizes: sizes[${i}] must be finite and > 0, got ${s}`);
    }
    result[i] = Math.log(s);
  }
  return result;
}
