import { describe, expect, test } from 'vitest';
import { argmax, logSoftmaxAt, Sampler, XorShift64Star } from './sampler.js';

/** softmax in fp64: the oracle the sampler's fp32 arithmetic is compared with. */
function softmax(logits: number[], temperature = 1): number[] {
  const scaled = logits.map((x) => x / temperature);
  const max = Math.max(...scaled);
  const e = scaled.map((x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

function frequencies(sampler: Sampler, logits: number[], draws: number): number[] {
  const counts = new Array(logits.length).fill(0);
  const row = Float32Array.from(logits);
  for (let i = 0; i < draws; i++) counts[sampler.sample(row)]++;
  return counts.map((c) => c / draws);
}

describe('XorShift64Star', () => {
  test("reproduces run.c's random_u32 (values from an independent 64-bit implementation)", () => {
    const rng = new XorShift64Star(42);
    expect([rng.nextU32(), rng.nextU32(), rng.nextU32()]).toEqual([1456360119, 3359763283, 3393612768]);
    const floats = new XorShift64Star(42);
    expect(floats.nextFloat()).toBe(Math.fround((1456360119 >>> 8) / 16777216));
  });
});

describe('Sampler', () => {
  const logits = [2, 1, 0.5, -1, -3];

  test('temperature 0 is argmax, the first of equal maxima', () => {
    const greedy = new Sampler({ temperature: 0 });
    expect(greedy.sample(Float32Array.from(logits))).toBe(0);
    expect(greedy.sample(Float32Array.from([1, 3, 3, 2]))).toBe(1);
    expect(argmax(Float32Array.from([-5, -1, -1]))).toBe(1);
  });

  test('draws follow softmax(logits / T) (20,000 draws, each within 0.012)', () => {
    for (const temperature of [1, 0.5, 2]) {
      const seen = frequencies(new Sampler({ temperature, seed: 7 }), logits, 20_000);
      const expected = softmax(logits, temperature);
      for (let i = 0; i < logits.length; i++) expect(Math.abs(seen[i] - expected[i])).toBeLessThan(0.012);
    }
  });

  test('top-k draws only among the k largest, renormalised; top-k 1 is greedy', () => {
    const seen = frequencies(new Sampler({ topK: 2, seed: 3 }), logits, 20_000);
    const expected = softmax(logits.slice(0, 2));
    expect(seen.slice(2).every((p) => p === 0)).toBe(true);
    expect(Math.abs(seen[0] - expected[0])).toBeLessThan(0.012);
    const one = new Sampler({ topK: 1, seed: 3 });
    for (let i = 0; i < 50; i++) expect(one.sample(Float32Array.from(logits))).toBe(0);
  });

  test('top-p draws from the smallest prefix (by probability) whose mass exceeds p, renormalised', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const asLogits = probs.map(Math.log);
    // cumulative 0.5, 0.8 > 0.7: tokens 0 and 1, in the ratio 5 : 3
    const seen = frequencies(new Sampler({ topP: 0.7, seed: 11 }), asLogits, 20_000);
    expect(seen[2] + seen[3]).toBe(0);
    expect(Math.abs(seen[0] - 0.5 / 0.8)).toBeLessThan(0.012);
  });

  test('a seed makes the draws reproducible; different seeds differ', () => {
    const row = Float32Array.from(logits);
    const draw = (seed: number) =>
      Array.from(
        { length: 64 },
        (
          (s) => () =>
            s.sample(row)
        )(new Sampler({ seed })),
      );
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });

  test('bad options are refused, naming the option', () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow(/temperature/);
    expect(() => new Sampler({ temperature: Number.NaN })).toThrow(/temperature/);
    expect(() => new Sampler({ topK: 1.5 })).toThrow(/topK/);
    expect(() => new Sampler({ topP: 2 })).toThrow(/topP/);
    expect(() => new Sampler({ seed: 0 })).toThrow(/seed/);
  });
});

describe('logSoftmaxAt', () => {
  test('matches log(softmax) in fp64 and stays finite for large logits', () => {
    const row = Float32Array.from([3, -2, 0.25, 7]);
    const expected = softmax(Array.from(row)).map(Math.log);
    for (let i = 0; i < row.length; i++) expect(logSoftmaxAt(row, i)).toBeCloseTo(expected[i], 10);
    const large = Float32Array.from([1000, 0]);
    expect(logSoftmaxAt(large, 0)).toBeCloseTo(0, 10);
    expect(logSoftmaxAt(large, 1)).toBeCloseTo(-1000, 6);
  });
});
