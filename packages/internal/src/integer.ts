/** True when `x` is an integer number in [lo, hi] (NaN, ±∞, fractions and non-numbers are not). */
export function isIntegerIn(x: unknown, lo: number, hi: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
}
