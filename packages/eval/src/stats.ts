import { Rng } from './rng.js';

/**
 * Small statistics for paired evaluations: every config sees the same perplexity windows and the same retrieval
 * cases, so differences are computed per window / per case, and their noise is estimated by resampling those units.
 */

/** One scored unit of text: summed negative log-likelihood over `tokens` tokens. */
export interface NllUnit {
  nll: number;
  tokens: number;
}

export const DEFAULT_RESAMPLES = 2000;

/** exp(Σnll / Σtokens) of the units at `idx` (all units when omitted). */
export function perplexity(units: readonly NllUnit[], idx?: ArrayLike<number>): number {
  let nll = 0;
  let tokens = 0;
  const n = idx ? idx.length : units.length;
  for (let i = 0; i < n; i++) {
    const u = units[idx ? idx[i] : i];
    nll += u.nll;
    tokens += u.tokens;
  }
  return Math.exp(nll / tokens);
}

/**
 * Paired bootstrap: `resamples` times, draws n unit indices with replacement (seeded, so the same call gives the same
 * replicates) and evaluates `statistic` on them. Both sides of a paired statistic must read the same indices.
 */
export function bootstrap(
  n: number,
  statistic: (idx: Int32Array) => number,
  options: { resamples?: number; seed?: number } = {},
): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bootstrap: need at least one unit, got ${n}`);
  const resamples = options.resamples ?? DEFAULT_RESAMPLES;
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`resamples must be ≥ 1, got ${resamples}`);
  const rng = new Rng(options.seed ?? 0);
  const idx = new Int32Array(n);
  const out = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rng.next() * n);
    out[r] = statistic(idx);
  }
  return out;
}

/** Sample standard deviation (n − 1); 0 for fewer than two values. */
export function standardDeviation(values: ArrayLike<number>): number {
  const n = values.length;
  if (n < 2) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return Math.sqrt(ss / (n - 1));
}

/** The q-quantile (linear interpolation between order statistics, as R's type 7 and numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new RangeError('quantile: no values');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const sorted = Float64Array.from(values).sort();
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export interface PairedEstimate {
  /** the statistic on all units */
  estimate: number;
  /** standard deviation of the bootstrap replicates */
  se: number;
  /** percentile interval of the replicates */
  lo: number;
  hi: number;
  /** units compared */
  n: number;
}

const intervalOf = (estimate: number, reps: Float64Array, n: number, level: number): PairedEstimate => ({
  estimate,
  se: standardDeviation(reps),
  lo: quantile(reps, (1 - level) / 2),
  hi: quantile(reps, 1 - (1 - level) / 2),
  n,
});

function checkPaired(a: ArrayLike<unknown>, b: ArrayLike<unknown>): number {
  if (a.length !== b.length) throw new RangeError(`paired samples differ in length: ${a.length} vs ${b.length}`);
  if (a.length === 0) throw new RangeError('paired samples are empty');
  return a.length;
}

export interface BootstrapOptions {
  resamples?: number;
  seed?: number;
  /** interval coverage (default 0.95) */
  level?: number;
}

/** ppl(a) − ppl(b) over paired units (unit i of a and b scored the same tokens), with its bootstrap SE and CI. */
export function pairedPerplexityDifference(
  a: readonly NllUnit[],
  b: readonly NllUnit[],
  options: BootstrapOptions = {},
): PairedEstimate {
  const n = checkPaired(a, b);
  const reps = bootstrap(n, (idx) => perplexity(a, idx) - perplexity(b, idx), options);
  return intervalOf(perplexity(a) - perplexity(b), reps, n, options.level ?? 0.95);
}

/** mean(a) − mean(b) over paired values (e.g. pass = 1 / fail = 0 per case), with its bootstrap SE and CI. */
export function pairedMeanDifference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options: BootstrapOptions = {},
): PairedEstimate {
  const n = checkPaired(a, b);
  const mean = (xs: ArrayLike<number>, idx?: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[idx ? idx[i] : i];
    return s / n;
  };
  const reps = bootstrap(n, (idx) => mean(a, idx) - mean(b, idx), options);
  return intervalOf(mean(a) - mean(b), reps, n, options.level ?? 0.95);
}

/**
 * Exact two-sided sign test: of the pairs where one side is better (ties already dropped), `wins` went one way and
 * `losses` the other; the p-value of a split at least this uneven if either side were equally likely to be better.
 * 1 when there is nothing to test.
 */
export function signTest(wins: number, losses: number): number {
  for (const [name, v] of [
    ['wins', wins],
    ['losses', losses],
  ] as const) {
    if (!Number.isInteger(v) || v < 0)
      throw new RangeError(`signTest: ${name} must be a non-negative integer, got ${v}`);
  }
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.min(wins, losses);
  // P(X ≤ k) for X ~ Binomial(n, ½), summed in log space so large n neither overflows nor underflows
  let logC = 0; // ln C(n, 0)
  const logHalfN = -n * Math.LN2;
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    tail += Math.exp(logC + logHalfN);
    logC += Math.log((n - i) / (i + 1));
  }
  return Math.min(1, 2 * tail);
}

/** Standard error of a proportion of `passed` out of `n` (binomial, √(p(1−p)/n)); NaN for n = 0. */
export function binomialSE(passed: number, n: number): number {
  if (n === 0) return Number.NaN;
  const p = passed / n;
  return Math.sqrt((p * (1 - p)) / n);
}

/** How many pairs each side is better on, ties left out; `lowerIsBetter` for losses such as NLL. */
export function pairWins(
  reference: ArrayLike<number>,
  other: ArrayLike<number>,
  lowerIsBetter: boolean,
): { reference: number; other: number; ties: number } {
  const n = checkPaired(reference, other);
  const out = { reference: 0, other: 0, ties: 0 };
  for (let i = 0; i < n; i++) {
    const d = other[i] - reference[i];
    if (d === 0) out.ties++;
    else if (d < 0 === lowerIsBetter) out.other++;
    else out.reference++;
  }
  return out;
}

export type Verdict = 'reference better' | 'reference worse' | 'tie (within noise)' | 'n/a (fewer than 2 pairs)';

/**
 * Reads a CI of (other − reference): containing 0 is a tie; otherwise the side the whole interval favours wins.
 * With fewer than two pairs the bootstrap has no spread, so nothing is claimed.
 */
export function verdict(ci: { lo: number; hi: number; n: number }, lowerIsBetter: boolean): Verdict {
  if (ci.n < 2) return 'n/a (fewer than 2 pairs)';
  if (ci.lo <= 0 && ci.hi >= 0) return 'tie (within noise)';
  const otherBetter = lowerIsBetter ? ci.hi < 0 : ci.lo > 0;
  return otherBetter ? 'reference worse' : 'reference better';
}
