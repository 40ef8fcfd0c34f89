// NaN and infinity semantics, the same in both kernels and the reference: IEEE arithmetic on the whole formula. A NaN
// in a logit a query computes (its q row, or the key or logSize of any entry it sees, masked entries included) makes
// that query's whole output row NaN and its masses NaN; a NaN in element k of a value row it sees makes element k of
// its output NaN (weight × NaN, weight 0 included); a query whose logits are all −∞ gets zeros and no mass.
import { describe, expect, it } from 'vitest';
import { decode, float32ArrayToFloat16Bits, prefill, referenceAttention, setSimdLevel, setThreads } from './index.js';
import { float16BitsToFloat32Array } from './reference.js';
import { randomArray, randomCache, restoreKernelSettingsAfterAll, rng, SIMD_LEVELS } from './test-helpers.js';
import type { HeadCache, KVDtype } from './types.js';

const levels = SIMD_LEVELS;
restoreKernelSettingsAfterAll();

const H = 4; // query heads 0, 1 read KV head 0; heads 2, 3 read KV head 1
const HKV = 2;

interface Config {
  name: string;
  lengths: [number, number];
  d: number;
  /** Entries [0, maskedPrefix) of KV head 0 are masked in the masked-prefix scenarios. */
  maskedPrefix: number;
  threads: number;
}

// Small: one task per head, masked prefix over a whole tile (32 keys) and part of the next; d = 37 has a tail after
// the 8-float SIMD blocks. Large with 3 threads: decode splits head 0 into 512-key chunks, so the masked prefix
// covers a whole chunk whose partial state the merge must not drop.
const configs: Config[] = [
  { name: '1 thread', lengths: [70, 45], d: 37, maskedPrefix: 40, threads: 1 },
  { name: '3 threads, split-K', lengths: [1300, 700], d: 64, maskedPrefix: 600, threads: 3 },
];

interface Case {
  q: Float32Array;
  /** fp32 keys / values / logSizes, mutated by the scenario before any fp16 conversion. */
  heads: { keys: Float32Array; values: Float32Array; logSizes: Float32Array; length: number }[];
  d: number;
  m: number;
  maskedPrefix: number;
}

type RowKind = 'nan' | 'zero' | 'finite';
/** NaN in these elements of the row only, the others finite. */
type NanColumns = { nanColumns: number[] };

interface Scenario {
  name: string;
  poison(c: Case): void;
  /** What row (t, i) of the output must be. */
  row(t: number, i: number, c: Case): RowKind | NanColumns;
  /** Whether mass[g][j] must be NaN (otherwise finite). */
  nanMass(g: number, j: number, c: Case): boolean;
}

const group = (i: number) => Math.floor(i / (H / HKV));
/** Last entry query t of the block sees in KV head g. */
const lastSeen = (c: Case, g: number, t: number) => c.heads[g].length - c.m + t;

const scenarios: Scenario[] = [
  {
    name: 'NaN in one query element (last element of a row)',
    poison: (c) => {
      c.q[((c.m - 1) * H + 1) * c.d + c.d - 1] = Number.NaN;
    },
    row: (t, i, c) => (t === c.m - 1 && i === 1 ? 'nan' : 'finite'),
    nanMass: (g) => g === 0, // the block's last query sees every entry
  },
  {
    name: 'NaN in one query element (first element, first block row)',
    poison: (c) => {
      c.q[2 * c.d] = Number.NaN;
    },
    row: (t, i) => (t === 0 && i === 2 ? 'nan' : 'finite'),
    nanMass: (g, j, c) => g === 1 && j <= lastSeen(c, 1, 0),
  },
  {
    name: 'all-NaN logSizes',
    poison: (c) => {
      c.heads[1].logSizes.fill(Number.NaN, 0, c.heads[1].length);
    },
    row: (_t, i) => (group(i) === 1 ? 'nan' : 'finite'),
    nanMass: (g) => g === 1,
  },
  {
    name: 'one NaN logSize (only the queries that see it)',
    poison: (c) => {
      c.heads[0].logSizes[c.heads[0].length - 2] = Number.NaN;
    },
    row: (t, i, c) => (group(i) === 0 && c.heads[0].length - 2 <= lastSeen(c, 0, t) ? 'nan' : 'finite'),
    nanMass: (g) => g === 0,
  },
  {
    name: 'one NaN key element',
    poison: (c) => {
      c.heads[0].keys[3 * c.d + c.d - 1] = Number.NaN;
    },
    row: (_t, i) => (group(i) === 0 ? 'nan' : 'finite'),
    nanMass: (g) => g === 0,
  },
  {
    name: 'one NaN value element: that output element only, masses finite',
    poison: (c) => {
      c.heads[0].values[33 * c.d + 5] = Number.NaN;
    },
    row: (_t, i) => (group(i) === 0 ? { nanColumns: [5] } : 'finite'),
    nanMass: () => false,
  },
  {
    name: 'NaN value of a masked entry (weight 0 × NaN)',
    poison: (c) => {
      c.heads[0].logSizes[10] = Number.NEGATIVE_INFINITY;
      c.heads[0].values[10 * c.d] = Number.NaN;
    },
    row: (_t, i) => (group(i) === 0 ? { nanColumns: [0] } : 'finite'),
    nanMass: () => false,
  },
  {
    name: 'NaN key in a masked prefix',
    poison: (c) => {
      c.heads[0].logSizes.fill(Number.NEGATIVE_INFINITY, 0, c.maskedPrefix);
      c.heads[0].keys[5 * c.d + 1] = Number.NaN;
    },
    row: (_t, i) => (group(i) === 0 ? 'nan' : 'finite'),
    nanMass: (g) => g === 0,
  },
  {
    name: 'NaN and ∞ values in a masked prefix (0 × NaN, 0 × ∞)',
    poison: (c) => {
      c.heads[0].logSizes.fill(Number.NEGATIVE_INFINITY, 0, c.maskedPrefix);
      c.heads[0].values[5 * c.d + 2] = Number.NaN;
      c.heads[0].values[6 * c.d + c.d - 1] = Number.POSITIVE_INFINITY; // 0 × ∞ is NaN too
    },
    row: (_t, i, c) => (group(i) === 0 ? { nanColumns: [2, c.d - 1] } : 'finite'),
    nanMass: () => false,
  },
  {
    name: 'NaN logSize in a masked prefix',
    poison: (c) => {
      c.heads[0].logSizes.fill(Number.NEGATIVE_INFINITY, 0, c.maskedPrefix);
      c.heads[0].logSizes[7] = Number.NaN;
    },
    row: (_t, i) => (group(i) === 0 ? 'nan' : 'finite'),
    nanMass: (g) => g === 0,
  },
  {
    name: 'a fully masked head gets zeros whatever its values hold',
    poison: (c) => {
      c.heads[1].logSizes.fill(Number.NEGATIVE_INFINITY, 0, c.heads[1].length);
      c.heads[1].values[3 * c.d] = Number.NaN;
      c.heads[1].values[4 * c.d + 1] = Number.POSITIVE_INFINITY;
    },
    row: (_t, i) => (group(i) === 1 ? 'zero' : 'finite'),
    nanMass: () => false,
  },
  {
    name: 'a NaN query over a fully masked head is NaN, its neighbour zeros',
    poison: (c) => {
      c.heads[1].logSizes.fill(Number.NEGATIVE_INFINITY, 0, c.heads[1].length);
      c.q[3 * c.d + 4] = Number.NaN;
    },
    row: (t, i) => (group(i) === 0 ? 'finite' : t === 0 && i === 3 ? 'nan' : 'zero'),
    nanMass: (g, j, c) => g === 1 && j <= lastSeen(c, 1, 0),
  },
  {
    name: 'a +Infinity logSize is NaN (∞ − ∞ in the softmax)',
    poison: (c) => {
      c.heads[0].logSizes[20] = Number.POSITIVE_INFINITY;
    },
    row: (_t, i) => (group(i) === 0 ? 'nan' : 'finite'),
    nanMass: (g) => g === 0,
  },
];

function makeCase(config: Config, m: number, seed: number): Case {
  const random = rng(seed);
  const cache = randomCache(random, config.lengths, config.d, 'float32');
  const heads = cache.heads.map((h) => ({
    keys: h.keys as Float32Array,
    values: h.values as Float32Array,
    logSizes: h.logSizes,
    length: h.length,
  }));
  return { q: randomArray(random, m * H * config.d, 2), heads, d: config.d, m, maskedPrefix: config.maskedPrefix };
}

/** What the kernel reads (fp16 bits for a fp16 cache) and what the reference gets (the same values as fp32). */
function storage(c: Case, dtype: KVDtype): { heads: HeadCache[]; rounded: HeadCache[] } {
  if (dtype === 'float32') return { heads: c.heads, rounded: c.heads };
  const heads = c.heads.map((h) => ({
    ...h,
    keys: float32ArrayToFloat16Bits(h.keys),
    values: float32ArrayToFloat16Bits(h.values),
  }));
  const rounded = heads.map((h) => ({
    ...h,
    keys: float16BitsToFloat32Array(h.keys),
    values: float16BitsToFloat32Array(h.values),
  }));
  return { heads, rounded };
}

function rowKind(out: Float32Array, row: number, d: number): RowKind | NanColumns | 'mixed' {
  const x = Array.from(out.subarray(row * d, (row + 1) * d));
  if (x.every(Number.isNaN)) return 'nan';
  if (x.every((v) => v === 0)) return 'zero';
  if (x.every(Number.isFinite)) return 'finite';
  if (x.every((v) => Number.isNaN(v) || Number.isFinite(v))) {
    return { nanColumns: x.flatMap((v, k) => (Number.isNaN(v) ? [k] : [])) };
  }
  return 'mixed';
}

/** NaNs at the same places, and the other elements within `tolerance` of `expected`'s scale. */
function expectClose(actual: Float32Array, expected: Float32Array, tolerance: number, what: string): void {
  let diff = 0;
  let scale = 0;
  for (let k = 0; k < expected.length; k++) {
    if (Number.isNaN(actual[k]) !== Number.isNaN(expected[k])) {
      expect.fail(`${what}[${k}]: ${actual[k]}, expected ${expected[k]}`);
    }
    if (Number.isNaN(expected[k])) continue;
    diff = Math.max(diff, Math.abs(actual[k] - expected[k]));
    scale = Math.max(scale, Math.abs(expected[k]));
  }
  expect(diff / (scale || 1), what).toBeLessThanOrEqual(tolerance);
}

function check(scenario: Scenario, c: Case, out: Float32Array, mass: Float32Array[], who: string): void {
  for (let t = 0; t < c.m; t++) {
    for (let i = 0; i < H; i++) {
      expect(rowKind(out, t * H + i, c.d), `${who}: row t=${t} head ${i}`).toEqual(scenario.row(t, i, c));
    }
  }
  for (let g = 0; g < HKV; g++) {
    for (let j = 0; j < c.heads[g].length; j++) {
      const nan = scenario.nanMass(g, j, c);
      if (nan !== Number.isNaN(mass[g][j]) || (!nan && !Number.isFinite(mass[g][j]))) {
        expect.fail(`${who}: mass[${g}][${j}] = ${mass[g][j]}, expected ${nan ? 'NaN' : 'finite'}`);
      }
    }
  }
}

describe('the reference', () => {
  it.each(scenarios)('$name', (scenario) => {
    for (const config of configs) {
      for (const m of [1, 5]) {
        const c = makeCase(config, m, 7);
        scenario.poison(c);
        const mass = c.heads.map((h) => new Float32Array(h.length));
        const out = referenceAttention({
          q: c.q,
          heads: c.heads,
          numHeads: H,
          headDim: c.d,
          blockLength: m,
          attentionMass: mass,
        });
        check(scenario, c, out, mass, `reference, ${config.name}, m=${m}`);
      }
    }
  });
});

describe.each(levels)('%s kernels', (level) => {
  it.each(scenarios)('$name', (scenario) => {
    setSimdLevel(level);
    for (const config of configs) {
      setThreads(config.threads);
      for (const dtype of ['float32', 'float16'] as const) {
        for (const m of [1, 5]) {
          const c = makeCase(config, m, 7);
          scenario.poison(c);
          const { heads, rounded } = storage(c, dtype);
          const args = { q: c.q, numHeads: H, headDim: c.d };
          const mass = heads.map((h) => new Float32Array(h.length).fill(-1));
          const out =
            m === 1
              ? decode({ ...args, heads, attentionMass: mass })
              : prefill({ ...args, heads, blockLength: m, attentionMass: mass });
          const who = `${level}, ${dtype}, ${config.name}, ${m === 1 ? 'decode' : `prefill m=${m}`}`;
          check(scenario, c, out, mass, who);
          // Without masses: the same output.
          const plain = m === 1 ? decode({ ...args, heads }) : prefill({ ...args, heads, blockLength: m });
          expectClose(plain, out, 0, `${who}: out without masses`);
          // And the same numbers as the reference wherever they are not NaN.
          const expectedMass = heads.map((h) => new Float32Array(h.length));
          const expected = referenceAttention({ ...args, heads: rounded, blockLength: m, attentionMass: expectedMass });
          expectClose(out, expected, 1e-5, `${who}: out`);
          for (let g = 0; g < HKV; g++) expectClose(mass[g], expectedMass[g], 1e-5, `${who}: mass[${g}]`);
        }
      }
    }
  });
});
