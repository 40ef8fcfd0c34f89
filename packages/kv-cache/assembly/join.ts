// The seed search of importance-seeded SemantiCache in WebAssembly SIMD: for every compressible entry, the seed of
// its candidate range whose unit key has the largest dot product with the entry's key (four columns at a time).

/**
 * For i < count: best[i] = the index s in [lo[i], hi[i]) maximizing dot(keys row i, unit row s) (ties to the lowest;
 * -1 for an empty range), bestDot[i] = that dot product, squares[i] = the squared norm of keys row i. keys is
 * count × d and unit is (seeds) × d, both f32 row-major; lo, hi and best are i32; bestDot and squares f32.
 */
export function nearest(
  keys: usize,
  count: i32,
  unit: usize,
  lo: usize,
  hi: usize,
  d: i32,
  best: usize,
  bestDot: usize,
  squares: usize,
): void {
  const wide = d & ~3;
  const rowBytes = (<usize>d) << 2;
  for (let i = 0; i < count; i++) {
    const row = keys + <usize>i * rowBytes;
    let sq = f32x4.splat(0);
    for (let j = 0; j < wide; j += 4) {
      const x = v128.load(row + ((<usize>j) << 2));
      sq = f32x4.add(sq, f32x4.mul(x, x));
    }
    let square =
      f32x4.extract_lane(sq, 0) + f32x4.extract_lane(sq, 1) + f32x4.extract_lane(sq, 2) + f32x4.extract_lane(sq, 3);
    for (let j = wide; j < d; j++) {
      const x = load<f32>(row + ((<usize>j) << 2));
      square += x * x;
    }
    store<f32>(squares + ((<usize>i) << 2), square);
    const from = load<i32>(lo + ((<usize>i) << 2));
    const to = load<i32>(hi + ((<usize>i) << 2));
    let bestIndex = -1;
    let top: f32 = -Infinity;
    for (let s = from; s < to; s++) {
      const target = unit + <usize>s * rowBytes;
      let acc = f32x4.splat(0);
      for (let j = 0; j < wide; j += 4) {
        const offset = (<usize>j) << 2;
        acc = f32x4.add(acc, f32x4.mul(v128.load(row + offset), v128.load(target + offset)));
      }
      let dot =
        f32x4.extract_lane(acc, 0) +
        f32x4.extract_lane(acc, 1) +
        f32x4.extract_lane(acc, 2) +
        f32x4.extract_lane(acc, 3);
      for (let j = wide; j < d; j++) {
        dot += load<f32>(row + ((<usize>j) << 2)) * load<f32>(target + ((<usize>j) << 2));
      }
      if (dot > top) {
        top = dot;
        bestIndex = s;
      }
    }
    store<i32>(best + ((<usize>i) << 2), bestIndex);
    store<f32>(bestDot + ((<usize>i) << 2), top);
  }
}
