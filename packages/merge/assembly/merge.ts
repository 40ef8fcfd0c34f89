// Weighted means of clusters of float32 rows, accumulated in float64 with WebAssembly SIMD.
//
// Every pointer is a byte offset into the imported memory. The caller lays out, for k clusters of rows of d floats:
//   src      n × d f32   the rows
//   dst      k × d f32   the means, written here (row c is cluster c)
//   members  n i32       the row index of every member, grouped by cluster, ascending within a cluster
//   start    k + 1 i32   cluster c's members are members[start[c] .. start[c + 1]); no cluster is empty
//   weight   n f64       the weight of every member slot (same order as members)
//   inv      k f64       1 / (sum of cluster c's weights)
// and has checked that every index is in range: nothing here is bounds-checked.
//
// For every dimension, a cluster's mean is (((w0·x0 + w1·x1) + w2·x2) + …) · inv in float64, members in order, rounded
// once to float32: the same operations in the same order as a scalar float64 loop, so the same bits. A cluster of one
// member is its row, copied bit for bit.

/** Lanes of float32 NaN or ±Inf: all eight exponent bits set. */
function nonFinite(v: v128): v128 {
  const exponent = i32x4.splat(0x7f800000);
  return i32x4.eq(v128.and(v, exponent), exponent);
}

function nonFiniteScalar(bits: u32): bool {
  return (bits & 0x7f800000) === 0x7f800000;
}

/** Two float32 from row, widened to float64. */
function load2(row: usize, offset: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(row + offset));
}

/** f32x4 of (a · s, b · s), each lane rounded to float32 once. */
function narrow(a: v128, b: v128, s: v128): v128 {
  return v128.shuffle<i64>(f32x4.demote_f64x2_zero(f64x2.mul(a, s)), f32x4.demote_f64x2_zero(f64x2.mul(b, s)), 0, 2);
}

/**
 * Copies `bytes` (a multiple of 4) from `from` to `to` and returns true if all of them are finite float32.
 */
function copyRows(from: usize, to: usize, bytes: usize): bool {
  let bad = i32x4.splat(0);
  let i: usize = 0;
  for (; i + 64 <= bytes; i += 64) {
    const v0 = v128.load(from + i);
    const v1 = v128.load(from + i, 16);
    const v2 = v128.load(from + i, 32);
    const v3 = v128.load(from + i, 48);
    v128.store(to + i, v0);
    v128.store(to + i, v1, 16);
    v128.store(to + i, v2, 32);
    v128.store(to + i, v3, 48);
    bad = v128.or(bad, v128.or(v128.or(nonFinite(v0), nonFinite(v1)), v128.or(nonFinite(v2), nonFinite(v3))));
  }
  for (; i + 16 <= bytes; i += 16) {
    const v = v128.load(from + i);
    v128.store(to + i, v);
    bad = v128.or(bad, nonFinite(v));
  }
  let badTail = false;
  for (; i < bytes; i += 4) {
    const x = load<u32>(from + i);
    store<u32>(to + i, x);
    badTail |= nonFiniteScalar(x);
  }
  return !(v128.any_true(bad) || badTail);
}

/** True if the `bytes` at p (a multiple of 4) are all finite float32. */
function rowsFinite(p: usize, bytes: usize): bool {
  for (let i: usize = 0; i < bytes; i += 4) if (nonFiniteScalar(load<u32>(p + i))) return false;
  return true;
}

/**
 * Writes the weighted mean of every cluster's rows to dst. Returns the first cluster whose mean holds NaN or ±Inf
 * (a non-finite member row, or an overflow), stopping there, or -1 when every mean is finite.
 */
export function meanRows(
  src: usize,
  dst: usize,
  members: usize,
  start: usize,
  weight: usize,
  inv: usize,
  k: i32,
  d: i32,
): i32 {
  const rowBytes = (<usize>d) << 2;
  let c = 0;
  while (c < k) {
    const from = load<i32>(start + ((<usize>c) << 2));
    const to = load<i32>(start + ((<usize>c) << 2), 4);
    const out = dst + <usize>c * rowBytes;

    if (to - from === 1) {
      // A run of single-member clusters over consecutive rows is one block copy.
      const head = load<i32>(members + ((<usize>from) << 2));
      let run = 1;
      while (
        c + run < k &&
        load<i32>(start + ((<usize>(c + run + 1)) << 2)) === from + run + 1 &&
        load<i32>(members + ((<usize>(from + run)) << 2)) === head + run
      )
        run++;
      if (!copyRows(src + <usize>head * rowBytes, out, <usize>run * rowBytes)) {
        for (let r = 0; r < run; r++) if (!rowsFinite(out + <usize>r * rowBytes, rowBytes)) return c + r;
      }
      c += run;
      continue;
    }

    const firstMember = members + ((<usize>from) << 2);
    const endMember = members + ((<usize>to) << 2);
    const firstWeight = weight + ((<usize>from) << 3);
    const s = v128.load64_splat(inv + ((<usize>c) << 3));
    let bad = i32x4.splat(0);
    let j = 0;

    // 8 dimensions at a time, in four f64x2 accumulators.
    for (; j + 8 <= d; j += 8) {
      const jb = (<usize>j) << 2;
      let m = firstMember;
      let wp = firstWeight;
      let row = src + <usize>load<i32>(m) * rowBytes + jb;
      let w = v128.load64_splat(wp);
      let a0 = f64x2.mul(w, load2(row, 0));
      let a1 = f64x2.mul(w, load2(row, 8));
      let a2 = f64x2.mul(w, load2(row, 16));
      let a3 = f64x2.mul(w, load2(row, 24));
      for (m += 4, wp += 8; m < endMember; m += 4, wp += 8) {
        row = src + <usize>load<i32>(m) * rowBytes + jb;
        w = v128.load64_splat(wp);
        a0 = f64x2.add(a0, f64x2.mul(w, load2(row, 0)));
        a1 = f64x2.add(a1, f64x2.mul(w, load2(row, 8)));
        a2 = f64x2.add(a2, f64x2.mul(w, load2(row, 16)));
        a3 = f64x2.add(a3, f64x2.mul(w, load2(row, 24)));
      }
      const lo = narrow(a0, a1, s);
      const hi = narrow(a2, a3, s);
      v128.store(out + jb, lo);
      v128.store(out + jb, hi, 16);
      bad = v128.or(bad, v128.or(nonFinite(lo), nonFinite(hi)));
    }

    // Then 2 at a time.
    for (; j + 2 <= d; j += 2) {
      const jb = (<usize>j) << 2;
      let m = firstMember;
      let wp = firstWeight;
      let a = f64x2.mul(v128.load64_splat(wp), load2(src + <usize>load<i32>(m) * rowBytes + jb, 0));
      for (m += 4, wp += 8; m < endMember; m += 4, wp += 8) {
        a = f64x2.add(a, f64x2.mul(v128.load64_splat(wp), load2(src + <usize>load<i32>(m) * rowBytes + jb, 0)));
      }
      const mean = f32x4.demote_f64x2_zero(f64x2.mul(a, s));
      v128.store64_lane(out + jb, mean, 0);
      bad = v128.or(bad, nonFinite(mean));
    }

    // The last one of an odd d.
    if (j < d) {
      const jb = (<usize>j) << 2;
      let m = firstMember;
      let wp = firstWeight;
      let a = load<f64>(wp) * <f64>load<f32>(src + <usize>load<i32>(m) * rowBytes + jb);
      for (m += 4, wp += 8; m < endMember; m += 4, wp += 8) {
        a += load<f64>(wp) * <f64>load<f32>(src + <usize>load<i32>(m) * rowBytes + jb);
      }
      const mean = <f32>(a * load<f64>(inv + ((<usize>c) << 3)));
      store<f32>(out + jb, mean);
      if (nonFiniteScalar(reinterpret<u32>(mean))) return c;
    }

    if (v128.any_true(bad)) return c;
    c++;
  }
  return -1;
}
