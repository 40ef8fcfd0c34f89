import { expect, it } from 'vitest';
import { isIntegerIn } from './integer.js';

it('accepts integer numbers in [lo, hi], bounds included, and nothing else', () => {
  for (const x of [0, 3, 7, -0]) expect(isIntegerIn(x, 0, 7)).toBe(true);
  for (const x of [-1, 8, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '3', null, undefined, 3n]) {
    expect(isIntegerIn(x, 0, 7)).toBe(false);
  }
  expect(isIntegerIn(2 ** 40, 1, Number.POSITIVE_INFINITY)).toBe(true);
  expect(isIntegerIn(Number.POSITIVE_INFINITY, 1, Number.POSITIVE_INFINITY)).toBe(false);
});
