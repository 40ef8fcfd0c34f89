// Pins the exact bytes mergeClusters produces on fixed inputs: speed work must not change a single bit of a core.
// The digests were recorded from the reference implementation; update them only for intended changes.
import { createHash } from 'node:crypto';
import { rng } from '@semanticache/testing';
import { describe, expect, it } from 'vitest';
import { type MergeInput, mergeClusters } from './index.js';

/** n entries in clusters of 1..9 members (runs of singletons included), members interleaved within a window. */
function fixture(n: number, d: number, seed: number) {
  const random = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const assignment = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < n; ) {
    const size = random() < 0.5 ? 1 : 1 + Math.floor(random() * 9);
    for (let j = 0; j < size && i < n; j++) assignment[i++] = k;
    k++;
  }
  // swap some neighbours so clusters are not contiguous
  for (let i = 1; i < n; i += 5) {
    const t = assignment[i];
    assignment[i] = assignment[i - 1];
    assignment[i - 1] = t;
  }
  const keys = Float32Array.from({ length: n * d }, gauss);
  const values = Float32Array.from({ length: n * d }, () => 3 * gauss());
  const sizes = Float32Array.from({ length: n }, () => 1 + Math.floor(random() * 4));
  const positions = Float64Array.from({ length: n }, (_, i) => i * 1.5 + random());
  const weights = Float32Array.from({ length: n }, () => (random() < 0.2 ? 0 : random()));
  return { keys, values, sizes, positions, weights, assignment, numClusters: k };
}

function digest(extra: (f: ReturnType<typeof fixture>) => Partial<MergeInput>, n: number, d: number): string {
  const f = fixture(n, d, 11 + d);
  const cores = mergeClusters({
    keys: f.keys,
    values: f.values,
    n,
    d,
    assignment: f.assignment,
    numClusters: f.numClusters,
    ...extra(f),
  });
  const hash = createHash('sha256');
  for (const a of [cores.keys, cores.values, cores.sizes, cores.positions, cores.weights]) {
    hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  return hash.digest('hex').slice(0, 16);
}

const CASES: [string, number, (f: ReturnType<typeof fixture>) => Partial<MergeInput>, string][] = [
  ['defaults', 64, () => ({}), '9fb5894cd0b1217a'],
  ['sizes and positions', 64, (f) => ({ sizes: f.sizes, positions: f.positions }), '6e727edac88d3a7c'],
  ['weights, d = 30', 30, (f) => ({ sizes: f.sizes, weights: f.weights }), '82af3d1584daa61b'],
  [
    'float64 weights, first position',
    64,
    (f) => ({ weights: Float64Array.from(f.weights), positionMode: 'first' }),
    'efbfcca6eb30e2a1',
  ],
];

describe('mergeClusters output is pinned', () => {
  for (const [name, d, extra, expected] of CASES) {
    it(name, () => {
      expect(digest(extra, 2000, d)).toBe(expected);
    });
  }
});
