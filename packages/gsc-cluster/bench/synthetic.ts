/**
 * Synthetic key/value caches of the demo model's shape, so the benchmarks need no model. "Structured" keys stand in
 * for real ones: each token draws a cluster centre from a Zipf law (frequent and rare words), keys are a head-wide
 * offset + centre + Gaussian noise, then rotated by position as Llama's RoPE does; values follow the same centres.
 */

/** Deterministic xorshift32 generator; the benchmark must not depend on Math.random. */
export function makeRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function makeGaussian(random: () => number): () => number {
  return () => {
    const u = Math.max(random(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
}

export interface SyntheticHead {
  keys: Float32Array;
  values: Float32Array;
  /** Decode-time queries (numQueries × d) at positions n, n+1, …, drawn like the keys. */
  queries: Float32Array;
}

export interface StructuredOptions {
  n: number;
  d: number;
  centres: number;
  /** Noise standard deviation relative to the centre's per-dimension scale. */
  noise: number;
  seed: number;
  numQueries: number;
}

/** Keys around `centres` Zipf-distributed centres with noise, plus RoPE rotation by position (θ = 10000). */
export function structuredHead({ n, d, centres, noise, seed, numQueries }: StructuredOptions): SyntheticHead {
  const random = makeRandom(seed);
  const gauss = makeGaussian(random);
  const offset = Float64Array.from({ length: d }, () => gauss() * 0.7);
  const keyCentres = Float64Array.from({ length: centres * d }, () => gauss());
  const valueCentres = Float64Array.from({ length: centres * d }, () => gauss());
  // Zipf(1) over centres via its cumulative distribution
  const cdf = new Float64Array(centres);
  let total = 0;
  for (let c = 0; c < centres; c++) {
    total += 1 / (c + 1);
    cdf[c] = total;
  }
  const keys = new Float32Array(n * d);
  const values = new Float32Array(n * d);
  const queries = new Float32Array(numQueries * d);
  const half = d / 2;
  for (let t = 0; t < n + numQueries; t++) {
    const out = t < n ? keys : queries;
    const row = t < n ? t : t - n;
    const u = random() * total;
    let lo = 0;
    let hi = centres - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    const c = lo;
    for (let i = 0; i < half; i++) {
      const x = offset[i] + keyCentres[c * d + i] + noise * gauss();
      const y = offset[i + half] + keyCentres[c * d + i + half] + noise * gauss();
      const angle = t * 10000 ** (-(2 * i) / d);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      out[row * d + i] = x * cos - y * sin;
      out[row * d + i + half] = x * sin + y * cos;
    }
    if (t < n) for (let k = 0; k < d; k++) values[t * d + k] = valueCentres[c * d + k] + noise * gauss();
  }
  return { keys, values, queries };
}

export function randomHead(n: number, d: number, seed: number, numQueries: number): SyntheticHead {
  const gauss = makeGaussian(makeRandom(seed));
  return {
    keys: Float32Array.from({ length: n * d }, gauss),
    values: Float32Array.from({ length: n * d }, gauss),
    queries: Float32Array.from({ length: numQueries * d }, gauss),
  };
}

/** Chunks of uniformly random length in [minLength, maxLength] (the last may be shorter). */
export function randomChunks(n: number, minLength: number, maxLength: number, seed: number): Uint32Array {
  const random = makeRandom(seed);
  const offsets = [0];
  while (offsets[offsets.length - 1] < n) {
    const len = minLength + Math.floor(random() * (maxLength - minLength + 1));
    offsets.push(Math.min(n, offsets[offsets.length - 1] + len));
  }
  return Uint32Array.from(offsets);
}
