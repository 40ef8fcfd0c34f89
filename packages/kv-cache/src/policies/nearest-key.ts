/**
 * Exact nearest-target search for merge-values: for each query row q (a raw key), the index of the unit target key u
 * with the largest q·u. The score of a pair is Σ_j q_j·u_j accumulated in float64 in order j = 0..d−1 (products of two
 * float32 values are exact in float64, so the only rounding is in the sum); ties go to the lowest target index. Every
 * path below (register-blocked or edge rows) computes that same sum, so the answer does not depend on block shapes.
 */

/** Rows of the query matrix handled per block; targets are also taken four at a time. */
const BLOCK = 4;

/**
 * nearest[i] = argmax_t queries[i]·targets[t] over t < targetCount (lowest t on ties), for i < queryCount.
 * Both matrices are packed row-major with `d` columns. With no targets every entry is −1.
 */
export function nearestTargets(
  queries: Float32Array,
  queryCount: number,
  targets: Float32Array,
  targetCount: number,
  d: number,
  nearest: Int32Array,
): void {
  if (targetCount === 0) {
    nearest.fill(-1, 0, queryCount);
    return;
  }
  let q = 0;
  for (; q + BLOCK <= queryCount; q += BLOCK) searchBlock4(queries, q, targets, targetCount, d, nearest);
  for (; q < queryCount; q++) nearest[q] = nearestOne(queries, q * d, targets, targetCount, d);
}

/** Four queries against all targets, four targets per sweep: 16 running sums share 8 loads per column. */
function searchBlock4(
  queries: Float32Array,
  q: number,
  targets: Float32Array,
  targetCount: number,
  d: number,
  nearest: Int32Array,
): void {
  const q0 = q * d;
  const q1 = q0 + d;
  const q2 = q1 + d;
  const q3 = q2 + d;
  let b0 = Number.NEGATIVE_INFINITY;
  let b1 = Number.NEGATIVE_INFINITY;
  let b2 = Number.NEGATIVE_INFINITY;
  let b3 = Number.NEGATIVE_INFINITY;
  let n0 = 0;
  let n1 = 0;
  let n2 = 0;
  let n3 = 0;
  let t = 0;
  for (; t + BLOCK <= targetCount; t += BLOCK) {
    const t0 = t * d;
    const t1 = t0 + d;
    const t2 = t1 + d;
    const t3 = t2 + d;
    let s00 = 0;
    let s01 = 0;
    let s02 = 0;
    let s03 = 0;
    let s10 = 0;
    let s11 = 0;
    let s12 = 0;
    let s13 = 0;
    let s20 = 0;
    let s21 = 0;
    let s22 = 0;
    let s23 = 0;
    let s30 = 0;
    let s31 = 0;
    let s32 = 0;
    let s33 = 0;
    for (let j = 0; j < d; j++) {
      const u0 = targets[t0 + j];
      const u1 = targets[t1 + j];
      const u2 = targets[t2 + j];
      const u3 = targets[t3 + j];
      const x0 = queries[q0 + j];
      s00 += x0 * u0;
      s01 += x0 * u1;
      s02 += x0 * u2;
      s03 += x0 * u3;
      const x1 = queries[q1 + j];
      s10 += x1 * u0;
      s11 += x1 * u1;
      s12 += x1 * u2;
      s13 += x1 * u3;
      const x2 = queries[q2 + j];
      s20 += x2 * u0;
      s21 += x2 * u1;
      s22 += x2 * u2;
      s23 += x2 * u3;
      const x3 = queries[q3 + j];
      s30 += x3 * u0;
      s31 += x3 * u1;
      s32 += x3 * u2;
      s33 += x3 * u3;
    }
    // strict > in target order keeps the lowest index on ties
    if (s00 > b0) {
      b0 = s00;
      n0 = t;
    }
    if (s01 > b0) {
      b0 = s01;
      n0 = t + 1;
    }
    if (s02 > b0) {
      b0 = s02;
      n0 = t + 2;
    }
    if (s03 > b0) {
      b0 = s03;
      n0 = t + 3;
    }
    if (s10 > b1) {
      b1 = s10;
      n1 = t;
    }
    if (s11 > b1) {
      b1 = s11;
      n1 = t + 1;
    }
    if (s12 > b1) {
      b1 = s12;
      n1 = t + 2;
    }
    if (s13 > b1) {
      b1 = s13;
      n1 = t + 3;
    }
    if (s20 > b2) {
      b2 = s20;
      n2 = t;
    }
    if (s21 > b2) {
      b2 = s21;
      n2 = t + 1;
    }
    if (s22 > b2) {
      b2 = s22;
      n2 = t + 2;
    }
    if (s23 > b2) {
      b2 = s23;
      n2 = t + 3;
    }
    if (s30 > b3) {
      b3 = s30;
      n3 = t;
    }
    if (s31 > b3) {
      b3 = s31;
      n3 = t + 1;
    }
    if (s32 > b3) {
      b3 = s32;
      n3 = t + 2;
    }
    if (s33 > b3) {
      b3 = s33;
      n3 = t + 3;
    }
  }
  for (; t < targetCount; t++) {
    const to = t * d;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < d; j++) {
      const u = targets[to + j];
      s0 += queries[q0 + j] * u;
      s1 += queries[q1 + j] * u;
      s2 += queries[q2 + j] * u;
      s3 += queries[q3 + j] * u;
    }
    if (s0 > b0) {
      b0 = s0;
      n0 = t;
    }
    if (s1 > b1) {
      b1 = s1;
      n1 = t;
    }
    if (s2 > b2) {
      b2 = s2;
      n2 = t;
    }
    if (s3 > b3) {
      b3 = s3;
      n3 = t;
    }
  }
  nearest[q] = n0;
  nearest[q + 1] = n1;
  nearest[q + 2] = n2;
  nearest[q + 3] = n3;
}

/** One query against all targets (the rows left over after the blocks of four). */
function nearestOne(queries: Float32Array, qo: number, targets: Float32Array, targetCount: number, d: number): number {
  let best = 0;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let t = 0; t < targetCount; t++) {
    const s = pairScore(queries, qo, targets, t * d, d);
    if (s > bestScore) {
      bestScore = s;
      best = t;
    }
  }
  return best;
}

/** The canonical pair score: Σ_j a_j·b_j in float64, in column order. */
export function pairScore(a: Float32Array, oa: number, b: Float32Array, ob: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += a[oa + j] * b[ob + j];
  return s;
}
