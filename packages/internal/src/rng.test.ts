import { describe, expect, it } from 'vitest';
import { rng } from './rng.js';

describe('rng', () => {
  it('is mulberry32: the published first outputs for seed 0, and the same stream for the same seed', () => {
    const random = rng(0);
    const first = [random(), random(), random()].map((x) => Math.round(x * 4294967296));
    expect(first).toEqual([1144304738, 1416247, 958946056]);
    const a = rng(42);
    const b = rng(42);
    for (let i = 0; i < 1000; i++) expect(a()).toBe(b());
  });

  it('stays in [0, 1) and spreads evenly', () => {
    const random = rng(7);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = random();
      expect(x >= 0 && x < 1).toBe(true);
      bins[Math.floor(x * 10)]++;
    }
    for (const n of bins) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });
});
