export type Pooling = 'max' | 'avg' | 'none';

/** SnapKV-style smoothing of the observation-window mass: a token near a peak is kept with it. */
export const DEFAULT_POOLING: Pooling = 'max';
export const DEFAULT_POOL_SIZE = 7;
export const POOLING_KEYS = ['pooling', 'poolSize'] as const;

export interface PooledScoreOptions {
  /** 'max' (default), 'avg' (kvpress) or 'none' */
  pooling?: Pooling;
  /** odd pooling width, default 7 */
  poolSize?: number;
}

export function checkPooling(options: PooledScoreOptions): { pooling: Pooling; size: number } {
  const pooling = options.pooling ?? DEFAULT_POOLING;
  if (pooling !== 'max' && pooling !== 'avg' && pooling !== 'none') {
    throw new TypeError(`pooling: expected 'max', 'avg' or 'none', got ${String(pooling)}`);
  }
  const size = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isInteger(size) || size < 1 || size % 2 === 0) {
    throw new RangeError(`poolSize: expected an odd positive integer, got ${String(size)}`);
  }
  return { pooling, size };
}

/** Pools scores over a centred window of `size` entries, clipped at the ends (avg divides by the entries seen). */
export function poolScores(scores: Float32Array, pooling: Pooling, size: number): Float32Array {
  const n = scores.length;
  if (pooling === 'none' || size === 1) return scores;
  const half = size >> 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const from = Math.max(0, i - half);
    const to = Math.min(n, i + half + 1);
    let acc = pooling === 'max' ? Number.NEGATIVE_INFINITY : 0;
    for (let j = from; j < to; j++) acc = pooling === 'max' ? Math.max(acc, scores[j]) : acc + scores[j];
    out[i] = pooling === 'max' ? acc : acc / (to - from);
  }
  return out;
}
