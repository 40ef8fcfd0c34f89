import { describe, expect, it } from 'vitest';
import {
  binomialSE,
  bootstrap,
  pairedMeanDifference,
  pairedPerplexityDifference,
  pairWins,
  perplexity,
  quantile,
  signTest,
  standardDeviation,
  verdict,
} from './stats.js';

describe('signTest', () => {
  it('gives exact two-sided binomial p-values for small n', () => {
    // 2 · P(X ≤ k), X ~ Binomial(n, ½), worked out by hand
    expect(signTest(0, 5)).toBeCloseTo(2 / 32, 15);
    expect(signTest(5, 0)).toBeCloseTo(2 / 32, 15);
    expect(signTest(1, 5)).toBeCloseTo((2 * (1 + 6)) / 64, 15);
    expect(signTest(2, 8)).toBeCloseTo((2 * (1 + 10 + 45)) / 1024, 15);
    expect(signTest(7, 2)).toBeCloseTo((2 * (1 + 9 + 36)) / 512, 15);
    expect(signTest(0, 10)).toBeCloseTo(2 / 1024, 15);
  });

  it('is 1 for balanced or empty splits and stays accurate for large n', () => {
    expect(signTest(3, 3)).toBe(1);
    expect(signTest(0, 1)).toBe(1);
    expect(signTest(0, 0)).toBe(1);
    // exact values from rational arithmetic
    expect(signTest(40, 60)).toBeCloseTo(0.05688793364098079, 12);
    expect(signTest(500, 600)).toBeCloseTo(0.0028195449914364275, 12);
  });

  it('rejects counts that are not non-negative integers', () => {
    expect(() => signTest(-1, 2)).toThrow(RangeError);
    expect(() => signTest(1.5, 2)).toThrow(/wins/);
  });
});

describe('binomialSE and helpers', () => {
  it('computes √(p(1−p)/n)', () => {
    expect(binomialSE(3, 4)).toBeCloseTo(Math.sqrt((0.75 * 0.25) / 4), 15);
    expect(binomialSE(5, 10)).toBeCloseTo(Math.sqrt(0.025), 15);
    expect(binomialSE(0, 10)).toBe(0);
    expect(binomialSE(0, 0)).toBeNaN();
  });

  it('quantile interpolates linearly between order statistics', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0.025)).toBeCloseTo(1.075, 12);
    expect(quantile([1, 2, 3, 4], 1)).toBe(4);
    expect(quantile([7], 0.3)).toBe(7);
    expect(() => quantile([], 0.5)).toThrow(RangeError);
  });

  it('standardDeviation uses n − 1', () => {
    expect(standardDeviation([1, 2, 3, 4])).toBeCloseTo(Math.sqrt(5 / 3), 15);
    expect(standardDeviation([3])).toBe(0);
  });

  it('perplexity pools NLL over tokens, not over windows', () => {
    const units = [
      { nll: 10, tokens: 10 },
      { nll: 30, tokens: 10 },
    ];
    expect(perplexity(units)).toBeCloseTo(Math.exp(2), 12);
    expect(perplexity(units, [1, 1])).toBeCloseTo(Math.exp(3), 12);
  });

  it('pairWins drops ties and honours the direction', () => {
    expect(pairWins([1, 2, 3, 4], [0, 2, 5, 6], true)).toEqual({ reference: 2, other: 1, ties: 1 });
    expect(pairWins([1, 0, 1, 0], [1, 1, 0, 1], false)).toEqual({ reference: 1, other: 2, ties: 1 });
    expect(() => pairWins([1], [1, 2], true)).toThrow(/differ in length/);
  });
});

describe('paired bootstrap', () => {
  it('is deterministic in the seed and changes with it', () => {
    const stat = (idx: Int32Array) => idx.reduce((a, i) => a + i, 0);
    const a = bootstrap(10, stat, { seed: 3, resamples: 50 });
    expect(bootstrap(10, stat, { seed: 3, resamples: 50 })).toEqual(a);
    expect(bootstrap(10, stat, { seed: 4, resamples: 50 })).not.toEqual(a);
    expect(a).toHaveLength(50);
    expect(() => bootstrap(0, stat)).toThrow(RangeError);
  });

  it('gives a zero-width interval for a constant difference', () => {
    const ref = [0, 1, 1, 0, 1, 0, 0, 1];
    const est = pairedMeanDifference(
      ref.map((x) => x + 0.5),
      ref,
      { seed: 1 },
    );
    expect(est.estimate).toBeCloseTo(0.5, 12);
    expect(est.hi - est.lo).toBeLessThan(1e-12);
    expect(est.lo).toBeCloseTo(0.5, 12);
    expect(est.se).toBeLessThan(1e-12);
    expect(verdict(est, false)).toBe('reference worse');
    // per-token NLL 2 under one config and 3 under the other in every window: every resample differs by e³ − e²
    const tokens = [5, 9, 12, 7];
    const p = pairedPerplexityDifference(
      tokens.map((t) => ({ nll: 3 * t, tokens: t })),
      tokens.map((t) => ({ nll: 2 * t, tokens: t })),
      { seed: 2 },
    );
    expect(p.estimate).toBeCloseTo(Math.exp(3) - Math.exp(2), 10);
    expect(p.hi - p.lo).toBeLessThan(1e-9);
    expect(p.n).toBe(4);
    expect(verdict(p, true)).toBe('reference better');
  });

  it('has about the analytic spread for independent fair coins', () => {
    // 100 pairs whose difference is +1 or −1 half the time each: SE of the mean ≈ 1/√100 = 0.1
    const ref = Array.from({ length: 100 }, (_, i) => i % 2);
    const other = ref.map((x) => 1 - x);
    const est = pairedMeanDifference(other, ref, { seed: 0 });
    expect(est.estimate).toBe(0);
    expect(est.se).toBeGreaterThan(0.085);
    expect(est.se).toBeLessThan(0.115);
    expect(est.lo).toBeLessThan(0);
    expect(est.hi).toBeGreaterThan(0);
    expect(verdict(est, false)).toBe('tie (within noise)');
  });

  it('refuses unpaired samples and makes no claim from one pair', () => {
    expect(() => pairedMeanDifference([1, 0], [1], {})).toThrow(/differ in length/);
    const one = pairedMeanDifference([1], [0], { seed: 0 });
    expect(verdict(one, false)).toBe('n/a (fewer than 2 pairs)');
  });
});
