// merge-values' nearest-target search in WebAssembly SIMD. It computes exactly the canonical scores of
// src/policies/nearest-key.ts (float64 sums of exact float32 products, in column order) with f64x2 lanes holding two
// TARGETS, never two columns, so each lane's sum runs in the same order as the scalar loop and the chosen indices are
// bitwise the same (a multiply then an add, never fused). Two queries × six targets share each sweep over the columns.

/** Target pairs per sweep (2 queries × 3 pairs: 6 running sums); exported for the side that lays targets out. */
export const PAIRS: u32 = 3;

/**
 * out[i] (int32) = index of the target with the largest score for query row i, lowest index on ties.
 * Queries are float64 rows of d columns (queryCount even). Targets are float64 in blocks of PAIRS pairs,
 * column-interleaved: element (block b, column j, pair m, lane l) at (((b·d + j)·PAIRS + m)·2 + l)·8 bytes, so one
 * column of a block is PAIRS contiguous v128 values; pairCount is a multiple of PAIRS (padding targets are NaN, which
 * never win).
 */
export function nearest(
  queryPtr: usize,
  queryCount: u32,
  targetPtr: usize,
  pairCount: u32,
  d: u32,
  outPtr: usize,
): void {
  const rowBytes = (<usize>d) << 3;
  let rowA = queryPtr;
  for (let i: u32 = 0; i < queryCount; i += 2) {
    const rowB = rowA + rowBytes;
    let bestA = -Infinity;
    let bestB = -Infinity;
    let indexA: i32 = 0;
    let indexB: i32 = 0;
    let column = targetPtr;
    for (let pair: u32 = 0; pair < pairCount; pair += PAIRS) {
      let a0 = f64x2.splat(0);
      let a1 = f64x2.splat(0);
      let a2 = f64x2.splat(0);
      let b0 = f64x2.splat(0);
      let b1 = f64x2.splat(0);
      let b2 = f64x2.splat(0);
      for (let j: usize = 0; j < rowBytes; j += 8) {
        const xa = v128.load64_splat(rowA + j);
        const xb = v128.load64_splat(rowB + j);
        const u0 = v128.load(column);
        const u1 = v128.load(column, 16);
        const u2 = v128.load(column, 32);
        a0 = f64x2.add(a0, f64x2.mul(xa, u0));
        b0 = f64x2.add(b0, f64x2.mul(xb, u0));
        a1 = f64x2.add(a1, f64x2.mul(xa, u1));
        b1 = f64x2.add(b1, f64x2.mul(xb, u1));
        a2 = f64x2.add(a2, f64x2.mul(xa, u2));
        b2 = f64x2.add(b2, f64x2.mul(xb, u2));
        column += PAIRS << 4;
      }
      // strict > in target order keeps the lowest index on ties
      const first = <i32>(pair << 1);
      let s = f64x2.extract_lane(a0, 0);
      if (s > bestA) {
        bestA = s;
        indexA = first;
      }
      s = f64x2.extract_lane(a0, 1);
      if (s > bestA) {
        bestA = s;
        indexA = first + 1;
      }
      s = f64x2.extract_lane(a1, 0);
      if (s > bestA) {
        bestA = s;
        indexA = first + 2;
      }
      s = f64x2.extract_lane(a1, 1);
      if (s > bestA) {
        bestA = s;
        indexA = first + 3;
      }
      s = f64x2.extract_lane(a2, 0);
      if (s > bestA) {
        bestA = s;
        indexA = first + 4;
      }
      s = f64x2.extract_lane(a2, 1);
      if (s > bestA) {
        bestA = s;
        indexA = first + 5;
      }
      s = f64x2.extract_lane(b0, 0);
      if (s > bestB) {
        bestB = s;
        indexB = first;
      }
      s = f64x2.extract_lane(b0, 1);
      if (s > bestB) {
        bestB = s;
        indexB = first + 1;
      }
      s = f64x2.extract_lane(b1, 0);
      if (s > bestB) {
        bestB = s;
        indexB = first + 2;
      }
      s = f64x2.extract_lane(b1, 1);
      if (s > bestB) {
        bestB = s;
        indexB = first + 3;
      }
      s = f64x2.extract_lane(b2, 0);
      if (s > bestB) {
        bestB = s;
        indexB = first + 4;
      }
      s = f64x2.extract_lane(b2, 1);
      if (s > bestB) {
        bestB = s;
        indexB = first + 5;
      }
    }
    const out = outPtr + ((<usize>i) << 2);
    store<i32>(out, indexA);
    store<i32>(out, indexB, 4);
    rowA = rowB + rowBytes;
  }
}
