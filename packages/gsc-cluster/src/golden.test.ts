// Pins the exact output of gscCluster (every mode) on fixed synthetic keys: speed work must not change a single
// assignment. The digests were recorded from the reference implementation; update them only for intended changes.
import { createHash } from 'node:crypto';
import { rng } from '@semanticache/testing';
import { describe, expect, it } from 'vitest';
import { type GscOptions, gscCluster } from './index.js';

/** Keys around a few directions per chunk, a zero row and duplicated rows, chunks of 1..300 tokens. */
function fixture(n: number, d: number, seed: number) {
  const random = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const offsets = [0];
  const lengths = [1, 7, 40, 64, 300, 23, 2, 64, 150];
  for (let c = 0; offsets[offsets.length - 1] < n; c++) {
    offsets.push(Math.min(n, offsets[offsets.length - 1] + lengths[c % lengths.length]));
  }
  const centres = Float32Array.from({ length: 6 * d }, gauss);
  const keys = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(random() * 6);
    for (let k = 0; k < d; k++) keys[i * d + k] = centres[c * d + k] + 0.45 * gauss();
  }
  keys.fill(0, 5 * d, 6 * d);
  keys.copyWithin(20 * d, 12 * d, 13 * d);
  const importance = Float32Array.from({ length: n }, () => Math.floor(random() * 50));
  const protectedMask = new Uint8Array(n);
  for (let i = 0; i < n; i += 17) protectedMask[i] = 1;
  return { keys, offsets: Uint32Array.from(offsets), importance, protectedMask };
}

function digest(options: (f: ReturnType<typeof fixture>, n: number) => GscOptions, n: number, d: number): string {
  const f = fixture(n, d, 7 + d);
  const r = gscCluster(f.keys, n, d, f.offsets, options(f, n));
  const meta = new Float64Array([r.numClusters, r.threshold, r.splitMembers, r.steps]);
  return createHash('sha256')
    .update(new Uint8Array(r.assignment.buffer))
    .update(new Uint8Array(meta.buffer))
    .digest('hex')
    .slice(0, 16);
}

const CASES: [string, number, (f: ReturnType<typeof fixture>, n: number) => GscOptions, string][] = [
  ['τ = 0.8', 64, () => ({ threshold: 0.8 }), 'f99e0b62f635b419'],
  ['τ = 0.5, protected', 64, (f) => ({ threshold: 0.5, protectedMask: f.protectedMask }), '52ee2ed32a51f2bb'],
  ['τ = 0.6, d = 30', 30, () => ({ threshold: 0.6 }), '96c527fb38822704'],
  ['target n/2', 64, (_, n) => ({ targetClusters: n / 2 }), 'a4213d51c5a7e17b'],
  [
    'target n/4, protected',
    64,
    (f, n) => ({ targetClusters: n / 4, protectedMask: f.protectedMask }),
    '5258dcac6cced90b',
  ],
  ['target n/3, d = 30', 30, (_, n) => ({ targetClusters: n / 3 }), 'f66b788ca0daf1c5'],
  [
    'target, importance',
    64,
    (f, n) => ({ targetClusters: n / 2, seedOrder: 'importance', importance: f.importance }),
    'a56f17b056b8eef2',
  ],
  ['τ = 0.7, centroid', 64, () => ({ threshold: 0.7, compareTo: 'centroid' }), '269629af18422647'],
  [
    'target n/2, centroid',
    64,
    (f, n) => ({ targetClusters: n / 2, compareTo: 'centroid', protectedMask: f.protectedMask }),
    'c582a1cd01c4b867',
  ],
  ['target, 3 steps', 64, (_, n) => ({ targetClusters: n / 2, maxSearchSteps: 3 }), '0670bdb81002495b'],
];

describe('gscCluster output is pinned', () => {
  for (const [name, d, options, expected] of CASES) {
    it(name, () => {
      expect(digest(options, 1200, d)).toBe(expected);
    });
  }
});
