/**
 * Clusters → semantic cores: the weighted mean of each cluster's keys and values, sizes added.
 * Means accumulate in float64, since a core can stand for thousands of tokens.
 */

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

function isIntegerIn(x: unknown, lo: number, hi: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
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

const EXPONENT = 0x7f800000;
const EXPONENT_ONE = 0x00800000;

/**
 * True if a float32 in bits[from, to) is NaN or ±Inf. Their exponent is all ones, so adding one to it carries into
 * bit 31; OR-ing four lanes at a time over the raw bits is about 2× faster than a float comparison per element.
 */
function hasNonFinite(bits: Uint32Array, from: number, to: number): boolean {
  let m = 0;
  let j = from;
  for (; j + 3 < to; j += 4) {
    m |=
      ((bits[j] & EXPONENT) + EXPONENT_ONE) |
      ((bits[j + 1] & EXPONENT) + EXPONENT_ONE) |
      ((bits[j + 2] & EXPONENT) + EXPONENT_ONE) |
      ((bits[j + 3] & EXPONENT) + EXPONENT_ONE);
  }
  for (; j < to; j++) m |= (bits[j] & EXPONENT) + EXPONENT_ONE;
  return (m & 0x80000000) !== 0;
}

/**
 * Throws, naming the row, if rows [first, first + count) of keys or values hold NaN or ±Inf (`keyBits`, `valueBits`:
 * Uint32Array views of them, made once per call rather than per run).
 */
function checkRowsFinite(
  keys: Float32Array,
  values: Float32Array,
  keyBits: Uint32Array,
  valueBits: Uint32Array,
  first: number,
  count: number,
  d: number,
): void {
  for (const [name, rows, bits] of [
    ['keys', keys, keyBits],
    ['values', values, valueBits],
  ] as const) {
    if (!hasNonFinite(bits, first * d, (first + count) * d)) continue;
    for (let r = first; r < first + count; r++) {
      for (let j = 0; j < d; j++) {
        if (!Number.isFinite(rows[r * d + j])) throw new RangeError(`mergeClusters: ${name} row ${r} is not finite`);
      }
    }
  }
}

/** Clusters up to this size are accumulated one dimension at a time; larger ones row by row (measured faster). */
const DIMENSION_MAJOR_MAX = 4;

/** Below this many elements a plain loop copies faster than subarray + set (a subarray costs an allocation). */
const BLOCK_COPY_MIN = 128;

/** dst[to ..] = src[from .. from + count): bit for bit, since the caller only copies finite rows. */
function copyRows(src: Float32Array, from: number, dst: Float32Array, to: number, count: number): void {
  if (count >= BLOCK_COPY_MIN) dst.set(src.subarray(from, from + count), to);
  else for (let j = 0; j < count; j++) dst[to + j] = src[from + j];
}

/** First non-finite entry of a cluster's rows, for the error message. */
function firstNonFinite(rows: Float32Array, members: Int32Array, from: number, to: number, d: number): number {
  for (let m = from; m < to; m++) {
    const o = members[m] * d;
    for (let k = 0; k < d; k++) if (!Number.isFinite(rows[o + k])) return members[m];
  }
  return -1;
}

/**
 * Merges every cluster into one core: weighted mean of keys and of values (weights = sizes, or `weights` when
 * given; a cluster whose weights sum to 0 falls back to its sizes), sizes added, positions by `positionMode`.
 * Core c is cluster c. Merging cores again (with their `sizes`, `positions` and `weights`) equals merging all their
 * tokens at once, up to float rounding.
 */
export function mergeClusters(input: MergeInput): Cores {
  validate(input);
  const { keys, values, sizes, positions, n, d, assignment, numClusters: k, weights } = input;
  const first = input.positionMode === 'first';

  // Counting sort of the entries by cluster, so each cluster is accumulated in one pass over a d-length scratch.
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
  const members = new Int32Array(n);
  const fill = start.slice(0, k);
  for (let i = 0; i < n; i++) members[fill[assignment[i]]++] = i;

  const outKeys = new Float32Array(k * d);
  const outValues = new Float32Array(k * d);
  const outSizes = new Float32Array(k);
  const outPositions = new Float64Array(k);
  const outWeights = new Float64Array(k);
  // every member's row offset and weight, for the cluster being merged (scratch, sized for the largest cluster)
  let largest = 0;
  for (let c = 0; c < k; c++) largest = Math.max(largest, start[c + 1] - start[c]);
  const memberOffset = new Int32Array(largest);
  const memberWeight = new Float64Array(largest);
  const accKey = new Float64Array(d);
  const accValue = new Float64Array(d);
  const keyBits = new Uint32Array(keys.buffer, keys.byteOffset, keys.length);
  const valueBits = new Uint32Array(values.buffer, values.byteOffset, values.length);

  for (let c = 0; c < k; c++) {
    const from = start[c];
    const to = start[c + 1];
    if (to - from === 1) {
      // A run of singleton clusters over consecutive entries is a block copy: a singleton's mean is its own row
      // (the float64 round trip w·x/w lands back on the same float32).
      const head = members[from];
      let run = 1;
      while (c + run < k && start[c + run + 1] - start[c + run] === 1 && members[from + run] === head + run) run++;
      copyRows(keys, head * d, outKeys, c * d, run * d);
      copyRows(values, head * d, outValues, c * d, run * d);
      for (let r = 0; r < run; r++) {
        const i = head + r;
        const s = sizes === undefined ? 1 : sizes[i];
        outSizes[c + r] = s;
        outPositions[c + r] = positions === undefined ? i : positions[i];
        outWeights[c + r] = weights === undefined ? s : weights[i];
      }
      checkRowsFinite(keys, values, keyBits, valueBits, head, run, d);
      c += run - 1;
      continue;
    }
    let sizeSum = 0;
    let positionSum = 0;
    for (let m = from; m < to; m++) {
      const i = members[m];
      const s = sizes === undefined ? 1 : sizes[i];
      sizeSum += s;
      positionSum += s * (positions === undefined ? i : positions[i]);
    }
    let givenWeightSum = 0;
    if (weights !== undefined) for (let m = from; m < to; m++) givenWeightSum += weights[members[m]];
    const useWeights = givenWeightSum > 0;
    const weightSum = useWeights ? givenWeightSum : sizeSum;
    const oc = c * d;
    // x − x is 0 for every finite x and NaN for NaN/±Inf: a branch, not a serial sum, keeps the copy fast.
    let finite = true;
    const size = to - from;
    for (let t = 0; t < size; t++) {
      const i = members[from + t];
      memberOffset[t] = i * d;
      memberWeight[t] = useWeights ? weights![i] : sizes === undefined ? 1 : sizes[i];
    }
    const inv = 1 / weightSum;
    if (size <= DIMENSION_MAJOR_MAX) {
      // One dimension at a time over the members, the sums kept in registers: the same additions in the same order
      // as accumulating row by row, so the same bits.
      const w0 = memberWeight[0];
      const o0 = memberOffset[0];
      for (let j = 0; j < d; j++) {
        let sumKey = w0 * keys[o0 + j];
        let sumValue = w0 * values[o0 + j];
        for (let t = 1; t < size; t++) {
          const w = memberWeight[t];
          const o = memberOffset[t] + j;
          sumKey += w * keys[o];
          sumValue += w * values[o];
        }
        accKey[j] = sumKey;
        accValue[j] = sumValue;
      }
    } else {
      for (let j = 0, w = memberWeight[0], o = memberOffset[0]; j < d; j++) {
        accKey[j] = w * keys[o + j];
        accValue[j] = w * values[o + j];
      }
      for (let t = 1; t < size; t++) {
        const w = memberWeight[t];
        const o = memberOffset[t];
        for (let j = 0; j < d; j++) {
          accKey[j] += w * keys[o + j];
          accValue[j] += w * values[o + j];
        }
      }
    }
    for (let j = 0; j < d; j++) {
      const kv = accKey[j] * inv;
      const vv = accValue[j] * inv;
      outKeys[oc + j] = kv;
      outValues[oc + j] = vv;
      if (kv - kv !== 0 || vv - vv !== 0) finite = false;
    }
    // Finite float32 inputs cannot overflow a float64 mean, so a non-finite mean means NaN or ±Inf came in.
    if (!finite) {
      const badKey = firstNonFinite(keys, members, from, to, d);
      if (badKey >= 0) throw new RangeError(`mergeClusters: keys row ${badKey} is not finite`);
      throw new RangeError(`mergeClusters: values row ${firstNonFinite(values, members, from, to, d)} is not finite`);
    }
    outSizes[c] = sizeSum;
    outWeights[c] = weights === undefined ? sizeSum : givenWeightSum;
    if (first) {
      // members are in index order within a cluster (stable counting sort)
      const i = members[from];
      outPositions[c] = positions === undefined ? i : positions[i];
    } else outPositions[c] = positionSum / sizeSum;
  }
  return { keys: outKeys, values: outValues, sizes: outSizes, positions: outPositions, weights: outWeights };
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
