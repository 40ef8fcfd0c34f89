import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  bandwidthProbe,
  decode,
  decodeAsync,
  type PrefillArgs,
  prefill,
  prefillAsync,
  setSimdLevel,
  setThreads,
} from './index.js';
import { randomArray, randomCache, rng } from './test-helpers.js';
import type { KVDtype } from './types.js';

const d = 16;
const H = 4;

function validArgs(random: () => number, dtype: KVDtype): PrefillArgs {
  const cache = randomCache(random, [20, 9], d, dtype, { slack: 0 });
  return {
    q: randomArray(random, 3 * H * d),
    heads: cache.heads,
    numHeads: H,
    headDim: d,
    blockLength: 3,
    attentionMass: [new Float32Array(20), new Float32Array(9)],
  };
}

function detach(buffer: ArrayBufferLike): void {
  structuredClone(buffer, { transfer: [buffer as ArrayBuffer] });
}

type Mutation = (a: PrefillArgs, random: () => number) => void;
const pick = <T>(random: () => number, list: readonly T[]): T => list[Math.floor(random() * list.length)];
const badNumbers = [
  0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -Number.POSITIVE_INFINITY,
  2 ** 40,
  '4',
  null,
  {},
];

// Every mutation makes the arguments invalid.
const mutations: Record<string, Mutation> = {
  qType: (a, r) => {
    a.q = pick(r, [new Float64Array(a.q.length), Array.from(a.q), null, 'q', new Uint16Array(a.q.length)]) as never;
  },
  qLength: (a, r) => {
    a.q = new Float32Array(a.q.length + pick(r, [-1, 1, -a.q.length, H * d]));
  },
  qDetached: (a) => detach(a.q.buffer),
  headsType: (a, r) => {
    a.heads = pick(r, [null, {}, 'heads', a.heads[0]]) as never;
  },
  headsCount: (a, r) => {
    a.heads = pick(r, [[], [a.heads[0], a.heads[1], a.heads[0]], [...a.heads, ...a.heads, ...a.heads]]);
  },
  headNotObject: (a, r) => {
    a.heads[Math.floor(r() * 2)] = pick(r, [null, 3, 'head', undefined]) as never;
  },
  keysType: (a, r) => {
    const h = a.heads[Math.floor(r() * 2)];
    h.keys = pick(r, [
      new Float64Array(h.keys.length),
      new Int16Array(h.keys.length),
      Array.from(h.keys),
      null,
    ]) as never;
  },
  valuesDtype: (a, r) => {
    const h = a.heads[Math.floor(r() * 2)];
    h.values = (
      h.values instanceof Float32Array ? new Uint16Array(h.values.length) : new Float32Array(h.values.length)
    ) as never;
  },
  mixedDtypes: (a) => {
    const h = a.heads[1];
    const F = h.keys instanceof Float32Array ? Uint16Array : Float32Array;
    a.heads[1] = { ...h, keys: new F(h.keys.length), values: new F(h.values.length) };
  },
  keysShort: (a, r) => {
    const h = a.heads[Math.floor(r() * 2)];
    h.keys = h.keys.subarray(0, h.length * d - 1 - Math.floor(r() * d));
  },
  valuesShort: (a, r) => {
    const h = a.heads[Math.floor(r() * 2)];
    h.values = h.values.subarray(0, h.length * d - 1);
  },
  keysDetached: (a, r) => detach(a.heads[Math.floor(r() * 2)].keys.buffer),
  logSizesBad: (a, r) => {
    const h = a.heads[Math.floor(r() * 2)];
    h.logSizes = pick(r, [h.logSizes.subarray(1), new Float64Array(h.length), null]) as never;
  },
  lengthBad: (a, r) => {
    const h = a.heads[Math.floor(r() * 2)];
    h.length = pick(r, [-1, Number.NaN, 1.5, Number.POSITIVE_INFINITY, h.length + 1, 1e9, '5', undefined]) as never;
  },
  lengthBelowBlock: (a) => {
    a.heads[1].length = 2;
  },
  numHeadsBad: (a, r) => {
    a.numHeads = pick(r, [...badNumbers, 3, 5, 1]) as never;
  },
  headDimBad: (a, r) => {
    a.headDim = pick(r, [...badNumbers, d + 1, d / 2]) as never;
  },
  blockLengthBad: (a, r) => {
    a.blockLength = pick(r, [...badNumbers, 10, 21, 4]) as never;
  },
  scaleBad: (a, r) => {
    a.scale = pick(r, [Number.NaN, Number.POSITIVE_INFINITY, 1e39, '1', null]) as never;
  },
  outBad: (a, r) => {
    a.out = pick(r, [new Float32Array(a.q.length - 1), new Float64Array(a.q.length), a.q, []]) as never;
  },
  outOverlapsKeys: (a) => {
    const keys = a.heads[0].keys;
    if (!(keys instanceof Float32Array)) {
      a.out = a.q; // aliasing q is just as wrong
      return;
    }
    a.out = new Float32Array(keys.buffer, keys.byteOffset, a.q.length);
  },
  massBad: (a, r) => {
    a.attentionMass = pick(r, [
      [new Float32Array(20)],
      [new Float32Array(20), new Float32Array(8)],
      [new Float32Array(20), new Float64Array(9)],
      'mass',
      [a.heads[0].logSizes, new Float32Array(9)],
    ]) as never;
  },
};

function expectTypedError(error: unknown): void {
  expect(error instanceof TypeError || error instanceof RangeError, String(error)).toBe(true);
  expect((error as Error).message.length).toBeGreaterThan(5);
}

describe('argument validation', () => {
  it('accepts the unmutated arguments', () => {
    const random = rng(1);
    for (const dtype of ['float32', 'float16'] as const)
      expect(prefill(validArgs(random, dtype)).length).toBe(3 * H * d);
  });

  it('hundreds of malformed calls give a TypeError or RangeError naming the argument', async () => {
    const random = rng(2);
    const names = Object.keys(mutations);
    for (let trial = 0; trial < 600; trial++) {
      const name = names[trial % names.length];
      const args = validArgs(random, random() < 0.5 ? 'float32' : 'float16');
      mutations[name](args, random);
      const form = trial % 4;
      let error: unknown;
      try {
        if (form === 0) prefill(args);
        else if (form === 1) await prefillAsync(args);
        else {
          // decode: a one-token view of the same arguments
          const one = {
            ...args,
            q: args.q instanceof Float32Array && args.q.length === 3 * H * d ? args.q.subarray(0, H * d) : args.q,
          };
          delete (one as Partial<PrefillArgs>).blockLength;
          if (name === 'blockLengthBad' || name === 'lengthBelowBlock') (one as PrefillArgs).blockLength = 2;
          if (form === 2) decode(one);
          else await decodeAsync(one);
        }
      } catch (e) {
        error = e;
      }
      expect(error, `${name} (form ${form}) was accepted`).toBeDefined();
      expectTypedError(error);
    }
  });

  it('the native layer rejects garbage on its own, without the TypeScript checks', () => {
    const native = createRequire(import.meta.url)('node-gyp-build')(
      path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'),
    );
    const random = rng(3);
    const valueFor = (): unknown => {
      const n = Math.floor(random() * 40);
      return pick(random, [
        undefined,
        null,
        Number.NaN,
        -1,
        0,
        1,
        2,
        4,
        16,
        2 ** 33,
        1.5,
        'x',
        {},
        [],
        new Float32Array(n),
        new Uint16Array(n),
        new Float64Array(n),
        new DataView(new ArrayBuffer(8)),
        [{ keys: new Float32Array(n), values: new Float32Array(n), logSizes: new Float32Array(n), length: n }],
        [{ keys: new Uint16Array(n * 16), values: new Float32Array(n * 16), logSizes: new Float32Array(n), length: n }],
        [
          {
            keys: new Float32Array(n * 16),
            values: new Float32Array(n * 16),
            logSizes: new Float32Array(n),
            length: n + 1,
          },
        ],
        [{ length: -n }],
        [null, null],
        [new Float32Array(n), new Float32Array(2)],
      ]);
    };
    let rejected = 0;
    for (let trial = 0; trial < 500; trial++) {
      const argc = Math.floor(random() * 9);
      const argv = Array.from({ length: argc }, valueFor);
      try {
        native.attention(...argv);
      } catch (error) {
        expectTypedError(error);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(450);
  });

  it('rejects bad options of the other exports', () => {
    expect(() => setThreads(0)).toThrow(RangeError);
    expect(() => setThreads(1.5)).toThrow(RangeError);
    expect(() => setThreads('2' as never)).toThrow(TypeError);
    expect(() => setSimdLevel('avx1024' as never)).toThrow(RangeError);
    expect(() => bandwidthProbe({ megabytes: 0 })).toThrow(RangeError);
    expect(() => bandwidthProbe({ repeats: Number.NaN })).toThrow(RangeError);
    expect(() => decode(null as never)).toThrow(TypeError);
  });
});
