import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CompareTo, type GscOptions, gscCluster, minClusters, type SeedOrder } from './index.js';

interface Problem {
  n: number;
  d: number;
  keys: Float32Array;
  offsets: Uint32Array;
  importance: Float32Array;
  protectedMask: Uint8Array;
  tau: number;
}

const offsetsFromCuts = (n: number, cuts: boolean[]): Uint32Array => {
  const offsets = [0];
  for (let i = 1; i < n; i++) if (cuts[i - 1]) offsets.push(i);
  if (n > 0) offsets.push(n);
  return Uint32Array.from(offsets);
};

/** Small-integer keys (many identical, parallel and zero rows) or arbitrary float32 keys, random chunks. */
const problemArb = (maxN = 36): fc.Arbitrary<Problem> =>
  fc
    .record({ n: fc.integer({ min: 0, max: maxN }), d: fc.integer({ min: 1, max: 5 }), small: fc.boolean() })
    .chain(({ n, d, small }) =>
      fc.record({
        n: fc.constant(n),
        d: fc.constant(d),
        keys: fc
          .array(small ? fc.integer({ min: -2, max: 2 }) : fc.float({ min: -8, max: 8, noNaN: true }), {
            minLength: n * d,
            maxLength: n * d,
          })
          .map((a) => Float32Array.from(a)),
        offsets: fc
          .array(fc.boolean(), { minLength: Math.max(0, n - 1), maxLength: Math.max(0, n - 1) })
          .map((cuts) => offsetsFromCuts(n, cuts)),
        importance: fc
          .array(fc.integer({ min: 0, max: 5 }), { minLength: n, maxLength: n })
          .map((a) => Float32Array.from(a)),
        protectedMask: fc
          .array(fc.integer({ min: 0, max: 4 }), { minLength: n, maxLength: n })
          .map((a) => Uint8Array.from(a, (v) => (v === 0 ? 1 : 0))),
        tau: fc.oneof(fc.double({ min: -1, max: 1, noNaN: true }), fc.constantFrom(-1, 0, 0.5, 0.9, 1)),
      }),
    );

const modes: [SeedOrder, CompareTo][] = [
  ['position', 'seed'],
  ['importance', 'seed'],
  ['position', 'centroid'],
  ['importance', 'centroid'],
];

const chunkOf = (offsets: Uint32Array, n: number): Int32Array => {
  const chunk = new Int32Array(n);
  for (let c = 0; c + 1 < offsets.length; c++) chunk.fill(c, offsets[c], offsets[c + 1]);
  return chunk;
};

/** Plain float64 cosine; 1 between two zero vectors, 0 between a zero and a nonzero vector. */
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    dot += a[k] * b[k];
    na += a[k] * a[k];
    nb += b[k] * b[k];
  }
  if (na === 0 || nb === 0) return na === nb ? 1 : 0;
  return dot / Math.sqrt(na * nb);
};

const row = (p: Problem, i: number) => p.keys.subarray(i * p.d, (i + 1) * p.d);

/** Straightforward reimplementation of the greedy scheme, used as an oracle. */
function reference(p: Problem, tau: number, seedOrder: SeedOrder, compareTo: CompareTo, useMask: boolean) {
  const signedSq = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let k = 0; k < a.length; k++) {
      dot += a[k] * b[k];
      na += a[k] * a[k];
      nb += b[k] * b[k];
    }
    if (na === 0 || nb === 0) return na === nb ? 1 : 0;
    return (dot * Math.abs(dot)) / (na * nb);
  };
  const key = (t: number) => (t <= -1 ? Number.NEGATIVE_INFINITY : t * Math.abs(t));
  const tauKey = key(tau);
  const centroidKey = key(tau - 1e-12);
  const owner = new Array<number>(p.n).fill(-1);
  for (let c = 0; c + 1 < p.offsets.length; c++) {
    let remaining: number[] = [];
    for (let i = p.offsets[c]; i < p.offsets[c + 1]; i++) {
      if (useMask && p.protectedMask[i]) owner[i] = i;
      else remaining.push(i);
    }
    if (seedOrder === 'importance') remaining.sort((a, b) => p.importance[b] - p.importance[a] || a - b);
    while (remaining.length > 0) {
      const seed = remaining[0];
      owner[seed] = seed;
      const seedRow = row(p, seed);
      let norm = 0;
      for (const v of seedRow) norm += v * v;
      const centroid = Array.from(seedRow, (v) => (norm > 0 ? v / Math.sqrt(norm) : 0));
      const next: number[] = [];
      for (const j of remaining.slice(1)) {
        const joins =
          compareTo === 'seed' ? signedSq(seedRow, row(p, j)) >= tauKey : signedSq(centroid, row(p, j)) >= centroidKey;
        if (!joins) {
          next.push(j);
          continue;
        }
        owner[j] = seed;
        if (compareTo === 'centroid') {
          const r = row(p, j);
          let nj = 0;
          for (const v of r) nj += v * v;
          for (let k = 0; k < p.d; k++) centroid[k] += nj > 0 ? r[k] / Math.sqrt(nj) : 0;
        }
      }
      remaining = next;
    }
  }
  const ids = new Array<number>(p.n).fill(-1);
  let next = 0;
  for (let i = 0; i < p.n; i++) if (owner[i] === i) ids[i] = next++;
  return { assignment: owner.map((o) => ids[o]), numClusters: next };
}

function checkPartition(p: Problem, assignment: Int32Array, numClusters: number): void {
  expect(assignment.length).toBe(p.n);
  const chunk = chunkOf(p.offsets, p.n);
  const chunkOfCluster = new Int32Array(numClusters).fill(-1);
  let nextNew = 0;
  for (let i = 0; i < p.n; i++) {
    const c = assignment[i];
    expect(c >= 0 && c < numClusters).toBe(true);
    if (chunkOfCluster[c] === -1) {
      chunkOfCluster[c] = chunk[i];
      nextNew++;
    }
    expect(chunkOfCluster[c]).toBe(chunk[i]);
  }
  expect(nextNew).toBe(numClusters);
}

/** Members of each cluster, in index order. */
const clustersOf = (assignment: Int32Array, numClusters: number): number[][] => {
  const out: number[][] = Array.from({ length: numClusters }, () => []);
  assignment.forEach((c, i) => {
    out[c].push(i);
  });
  return out;
};

/** The seed under importance order: most important member, ties to the lowest position. */
const importanceSeed = (members: number[], importance: Float32Array): number =>
  members.reduce((best, i) => (importance[i] > importance[best] ? i : best), members[0]);

describe('gscCluster properties', () => {
  it('matches a straightforward reference implementation in every mode', () => {
    fc.assert(
      fc.property(problemArb(), fc.constantFrom(...modes), fc.boolean(), (p, [seedOrder, compareTo], useMask) => {
        const options: GscOptions = { threshold: p.tau, seedOrder, compareTo, importance: p.importance };
        if (useMask) options.protectedMask = p.protectedMask;
        const got = gscCluster(p.keys, p.n, p.d, p.offsets, options);
        const want = reference(p, p.tau, seedOrder, compareTo, useMask);
        expect(got.numClusters).toBe(want.numClusters);
        expect(Array.from(got.assignment)).toEqual(want.assignment);
        expect(got.threshold).toBe(p.tau);
      }),
      { numRuns: 300 },
    );
  });

  it('puts every token in exactly one cluster, never across chunks, ids dense by seed position', () => {
    fc.assert(
      fc.property(problemArb(), fc.constantFrom(...modes), (p, [seedOrder, compareTo]) => {
        const { assignment, numClusters } = gscCluster(p.keys, p.n, p.d, p.offsets, {
          threshold: p.tau,
          seedOrder,
          compareTo,
          importance: p.importance,
          protectedMask: p.protectedMask,
        });
        checkPartition(p, assignment, numClusters);
        const clusters = clustersOf(assignment, numClusters);
        const seeds = clusters.map((m) => (seedOrder === 'importance' ? importanceSeed(m, p.importance) : m[0]));
        for (let c = 1; c < numClusters; c++) expect(seeds[c]).toBeGreaterThan(seeds[c - 1]);
      }),
    );
  });

  it('seed mode: every member meets τ against its seed; the seed is the most important member', () => {
    fc.assert(
      fc.property(problemArb(), fc.constantFrom<SeedOrder>('position', 'importance'), (p, seedOrder) => {
        const { assignment, numClusters } = gscCluster(p.keys, p.n, p.d, p.offsets, {
          threshold: p.tau,
          seedOrder,
          importance: p.importance,
        });
        for (const members of clustersOf(assignment, numClusters)) {
          const seed = seedOrder === 'importance' ? importanceSeed(members, p.importance) : members[0];
          for (const i of members) {
            expect(cosine(row(p, seed), row(p, i))).toBeGreaterThanOrEqual(p.tau - 1e-9);
            if (seedOrder === 'importance') expect(p.importance[i]).toBeLessThanOrEqual(p.importance[seed]);
          }
        }
      }),
    );
  });

  it('centroid mode: every member met τ against the running centroid when it joined', () => {
    fc.assert(
      fc.property(problemArb(), (p) => {
        const { assignment, numClusters } = gscCluster(p.keys, p.n, p.d, p.offsets, {
          threshold: p.tau,
          compareTo: 'centroid',
        });
        for (const members of clustersOf(assignment, numClusters)) {
          const centroid = new Float64Array(p.d);
          members.forEach((i, m) => {
            const r = row(p, i);
            if (m > 0) expect(cosine(centroid, r)).toBeGreaterThanOrEqual(p.tau - 1e-9);
            const norm = Math.hypot(...r);
            for (let k = 0; k < p.d; k++) centroid[k] += norm > 0 ? r[k] / norm : 0;
          });
        }
      }),
    );
  });

  it('τ = 1 on keys with distinct directions gives singletons', () => {
    fc.assert(
      fc.property(problemArb(24), (p) => {
        for (let i = 0; i < p.n; i++) {
          for (let j = i + 1; j < p.n; j++) fc.pre(cosine(row(p, i), row(p, j)) < 1 - 1e-6);
        }
        const { assignment, numClusters } = gscCluster(p.keys, p.n, p.d, p.offsets, { threshold: 1 });
        expect(numClusters).toBe(p.n);
        expect(Array.from(assignment)).toEqual(Array.from({ length: p.n }, (_, i) => i));
      }),
    );
  });

  it('identical keys in one chunk always share a cluster, for any τ ≤ 1 (seed mode)', () => {
    fc.assert(
      fc.property(problemArb(), fc.constantFrom<SeedOrder>('position', 'importance'), (p, seedOrder) => {
        const { assignment } = gscCluster(p.keys, p.n, p.d, p.offsets, {
          threshold: p.tau,
          seedOrder,
          importance: p.importance,
        });
        const chunk = chunkOf(p.offsets, p.n);
        for (let i = 0; i < p.n; i++) {
          for (let j = i + 1; j < p.n; j++) {
            if (chunk[i] === chunk[j] && row(p, i).every((v, k) => Object.is(v, row(p, j)[k]))) {
              expect(assignment[j]).toBe(assignment[i]);
            }
          }
        }
      }),
    );
  });

  it('protected tokens are singletons', () => {
    fc.assert(
      fc.property(problemArb(), fc.constantFrom(...modes), (p, [seedOrder, compareTo]) => {
        const { assignment, numClusters } = gscCluster(p.keys, p.n, p.d, p.offsets, {
          threshold: -1,
          seedOrder,
          compareTo,
          importance: p.importance,
          protectedMask: p.protectedMask,
        });
        const sizes = new Int32Array(numClusters);
        for (const c of assignment) sizes[c]++;
        for (let i = 0; i < p.n; i++) if (p.protectedMask[i]) expect(sizes[assignment[i]]).toBe(1);
        // τ = −1 merges everything else: the count is exactly the lower bound
        expect(numClusters).toBe(minClusters(p.n, p.offsets, p.protectedMask));
      }),
    );
  });

  it('target mode lands exactly on any reachable target, and members still meet the returned τ', () => {
    fc.assert(
      fc.property(
        problemArb(),
        fc.constantFrom(...modes),
        fc.boolean(),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (p, [seedOrder, compareTo], useMask, where) => {
          const mask = useMask ? p.protectedMask : undefined;
          const lowest = minClusters(p.n, p.offsets, mask);
          const target = Math.round(lowest + where * (p.n - lowest));
          const result = gscCluster(p.keys, p.n, p.d, p.offsets, {
            targetClusters: target,
            seedOrder,
            compareTo,
            importance: p.importance,
            protectedMask: mask,
          });
          expect(result.numClusters).toBe(target);
          checkPartition(p, result.assignment, result.numClusters);
          if (compareTo === 'seed') {
            for (const members of clustersOf(result.assignment, result.numClusters)) {
              const seed = seedOrder === 'importance' ? importanceSeed(members, p.importance) : members[0];
              for (const i of members) {
                expect(cosine(row(p, seed), row(p, i))).toBeGreaterThanOrEqual(result.threshold - 1e-9);
              }
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('gscCluster examples', () => {
  const offsetsAll = (n: number) => Uint32Array.of(0, n);

  it('clusters by direction, not magnitude, and numbers clusters by seed position', () => {
    const keys = Float32Array.of(1, 0, 0, 1, 2, 0, 0, 3, -1, 0);
    const r = gscCluster(keys, 5, 2, offsetsAll(5), { threshold: 0.9 });
    expect(Array.from(r.assignment)).toEqual([0, 1, 0, 1, 2]);
    expect(r.numClusters).toBe(3);
  });

  it('keeps clusters inside chunks even for identical keys', () => {
    const keys = new Float32Array(6).fill(1);
    const r = gscCluster(keys, 6, 1, Uint32Array.of(0, 2, 6), { threshold: 1 });
    expect(Array.from(r.assignment)).toEqual([0, 0, 1, 1, 1, 1]);
  });

  it('defines the cosine with a zero vector: 1 with another zero vector, 0 otherwise (never NaN)', () => {
    const keys = Float32Array.of(0, 0, 1, 0, 0, 0);
    expect(Array.from(gscCluster(keys, 3, 2, offsetsAll(3), { threshold: 1 }).assignment)).toEqual([0, 1, 0]);
    expect(Array.from(gscCluster(keys, 3, 2, offsetsAll(3), { threshold: 0.01 }).assignment)).toEqual([0, 1, 0]);
    expect(Array.from(gscCluster(keys, 3, 2, offsetsAll(3), { threshold: 0 }).assignment)).toEqual([0, 0, 0]);
    const centroid = gscCluster(keys, 3, 2, offsetsAll(3), { threshold: 0.5, compareTo: 'centroid' });
    expect(Array.from(centroid.assignment)).toEqual([0, 1, 0]);
  });

  it('importance order picks the most important token as seed', () => {
    // token 2 is most important; tokens 0 and 1 are each within τ of it but not of each other
    const keys = Float32Array.of(1, 0, 0, 1, 1, 1);
    const importance = Float32Array.of(0.1, 0.2, 0.9);
    const byPosition = gscCluster(keys, 3, 2, offsetsAll(3), { threshold: 0.7 });
    expect(Array.from(byPosition.assignment)).toEqual([0, 1, 0]);
    const byImportance = gscCluster(keys, 3, 2, offsetsAll(3), { threshold: 0.7, seedOrder: 'importance', importance });
    expect(Array.from(byImportance.assignment)).toEqual([0, 0, 0]);
  });

  it('centroid comparison follows the drifting mean', () => {
    // 0°, 40°, 80°: 80° is 80° from the seed but 60° from the mean of the first two
    const rad = (deg: number) => (deg * Math.PI) / 180;
    const keys = Float32Array.from([0, 40, 80].flatMap((a) => [Math.cos(rad(a)), Math.sin(rad(a))]));
    const tau = Math.cos(rad(61));
    expect(gscCluster(keys, 3, 2, offsetsAll(3), { threshold: tau }).numClusters).toBe(2);
    expect(gscCluster(keys, 3, 2, offsetsAll(3), { threshold: tau, compareTo: 'centroid' }).numClusters).toBe(1);
  });

  it('returns 0 clusters for empty input', () => {
    const r = gscCluster(new Float32Array(0), 0, 4, Uint32Array.of(0));
    expect(r.numClusters).toBe(0);
    expect(r.assignment.length).toBe(0);
    expect(gscCluster(new Float32Array(0), 0, 4, Uint32Array.of(0), { targetClusters: 0 }).numClusters).toBe(0);
  });

  it('target mode ends on identical keys (count flat in τ) by splitting members', () => {
    const keys = new Float32Array(64 * 4).fill(0.5);
    const offsets = Uint32Array.of(0, 16, 32, 48, 64);
    for (const target of [4, 5, 33, 64]) {
      const r = gscCluster(keys, 64, 4, offsets, { targetClusters: target });
      expect(r.numClusters).toBe(target);
      expect(r.splitMembers).toBe(target - 4);
    }
  });

  it('target mode finds τ on spread keys with few splits', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647 - 0.5;
    };
    const n = 512;
    const d = 16;
    const keys = Float32Array.from({ length: n * d }, random);
    const offsets = Uint32Array.from({ length: n / 32 + 1 }, (_, c) => c * 32);
    const r = gscCluster(keys, n, d, offsets, { targetClusters: 300 });
    expect(r.numClusters).toBe(300);
    expect(r.splitMembers).toBeLessThan(5);
    const fixed = gscCluster(keys, n, d, offsets, { threshold: r.threshold });
    expect(fixed.numClusters).toBe(300 - r.splitMembers);
  });
});

describe('gscCluster input errors', () => {
  const keys = new Float32Array(8);
  const offsets = Uint32Array.of(0, 2, 4);
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['keys type', () => gscCluster([1, 2] as unknown as Float32Array, 1, 2, Uint32Array.of(0, 1)), TypeError, /keys/],
    ['keys length', () => gscCluster(keys, 3, 2, Uint32Array.of(0, 3)), RangeError, /keys\.length/],
    ['n not integer', () => gscCluster(keys, 2.5, 2, offsets), RangeError, /\bn\b/],
    ['d not integer', () => gscCluster(keys, 4, 2.5, offsets), RangeError, /\bd\b/],
    ['d zero', () => gscCluster(new Float32Array(0), 0, 0, Uint32Array.of(0)), RangeError, /\bd\b/],
    ['offsets type', () => gscCluster(keys, 4, 2, [0, 4] as unknown as Uint32Array), TypeError, /offsets/],
    ['offsets short', () => gscCluster(keys, 4, 2, Uint32Array.of(0, 3)), RangeError, /offsets/],
    ['offsets start', () => gscCluster(keys, 4, 2, Uint32Array.of(1, 4)), RangeError, /offsets/],
    ['offsets order', () => gscCluster(keys, 4, 2, Uint32Array.of(0, 3, 2, 4)), RangeError, /increasing/],
    ['offsets empty chunk', () => gscCluster(keys, 4, 2, Uint32Array.of(0, 2, 2, 4)), RangeError, /increasing/],
    [
      'NaN key',
      () => gscCluster(Float32Array.of(0, 0, Number.NaN, 0), 2, 2, Uint32Array.of(0, 2)),
      RangeError,
      /row 1/,
    ],
    [
      'Inf key',
      () => gscCluster(Float32Array.of(Number.POSITIVE_INFINITY, 0), 1, 2, Uint32Array.of(0, 1)),
      RangeError,
      /row 0/,
    ],
    ['τ > 1', () => gscCluster(keys, 4, 2, offsets, { threshold: 1.01 }), RangeError, /threshold/],
    ['τ < −1', () => gscCluster(keys, 4, 2, offsets, { threshold: -2 }), RangeError, /threshold/],
    ['τ NaN', () => gscCluster(keys, 4, 2, offsets, { threshold: Number.NaN }), RangeError, /threshold/],
    ['τ and target', () => gscCluster(keys, 4, 2, offsets, { threshold: 0.5, targetClusters: 3 }), TypeError, /both/],
    ['target below chunks', () => gscCluster(keys, 4, 2, offsets, { targetClusters: 1 }), RangeError, /targetClusters/],
    ['target above n', () => gscCluster(keys, 4, 2, offsets, { targetClusters: 5 }), RangeError, /targetClusters/],
    ['target fraction', () => gscCluster(keys, 4, 2, offsets, { targetClusters: 2.5 }), RangeError, /targetClusters/],
    [
      'target below protected',
      () => gscCluster(keys, 4, 2, offsets, { targetClusters: 2, protectedMask: Uint8Array.of(1, 0, 0, 0) }),
      RangeError,
      /targetClusters/,
    ],
    ['seedOrder', () => gscCluster(keys, 4, 2, offsets, { seedOrder: 'random' as SeedOrder }), TypeError, /seedOrder/],
    ['importance missing', () => gscCluster(keys, 4, 2, offsets, { seedOrder: 'importance' }), TypeError, /importance/],
    [
      'importance length',
      () => gscCluster(keys, 4, 2, offsets, { seedOrder: 'importance', importance: new Float32Array(3) }),
      RangeError,
      /importance\.length/,
    ],
    [
      'importance NaN',
      () => gscCluster(keys, 4, 2, offsets, { importance: Float32Array.of(0, Number.NaN, 0, 0) }),
      RangeError,
      /importance\[1\]/,
    ],
    ['compareTo', () => gscCluster(keys, 4, 2, offsets, { compareTo: 'mean' as CompareTo }), TypeError, /compareTo/],
    [
      'protectedMask length',
      () => gscCluster(keys, 4, 2, offsets, { protectedMask: new Uint8Array(5) }),
      RangeError,
      /protectedMask/,
    ],
    [
      'maxSearchSteps',
      () => gscCluster(keys, 4, 2, offsets, { targetClusters: 3, maxSearchSteps: 0 }),
      RangeError,
      /maxSearchSteps/,
    ],
  ];
  it.each(cases)('%s', (_name, call, type, message) => {
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });
});
