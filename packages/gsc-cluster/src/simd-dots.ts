/**
 * Dot products of one row against a list of rows, in a tiny hand-assembled WebAssembly SIMD module. Products of two
 * float32 values are exact in float64, and the module accumulates them in float64 (two f64x2 accumulators), so the
 * result is as accurate as the scalar float64 loop, about 5× faster. The summation order (lanes k mod 4, combined as
 * (l0 + l1) + (l2 + l3), then the d mod 4 tail in order) is the same as the scalar `dotRows`, so both give the same
 * bits, and identical rows give bitwise-identical sums.
 *
 * Exports `dots(seedByteOffset, indexPtr, count, d, outPtr)`: out[i] = Σ_k row(seed)[k] · row(index[i])[k], and
 * `norms`, the same sum of each row with itself; row r starts at byte r·d·4 (keys are copied to the start).
 */

const SIMD = 0xfd;
const i32 = 0x7f;
const f64 = 0x7c;
const v128 = 0x7b;

// locals: 0 seedOff, 1 indexPtr, 2 count, 3 d, 4 outPtr | 5 i, 6 rowOff, 7 k, 8 dBytes | 9 acc0, 10 acc1 | 11 sum
const get = (l: number) => [0x20, l];
const set = (l: number) => [0x21, l];
const load64ZeroPromote = (base: number, offset: number) => [
  ...get(base),
  ...get(7),
  0x6a, // i32.add
  SIMD,
  0x5d,
  0x03,
  offset, // v128.load64_zero align=8
  SIMD,
  0x5f, // f64x2.promote_low_f32x4
];
const accumulate = (acc: number, offset: number, seedBase: number) => [
  ...get(acc),
  ...load64ZeroPromote(seedBase, offset),
  ...load64ZeroPromote(6, offset),
  SIMD,
  0xf2,
  0x01, // f64x2.mul
  SIMD,
  0xf0,
  0x01, // f64x2.add
  ...set(acc),
];
const lane = (acc: number, l: number) => [...get(acc), SIMD, 0x21, l]; // f64x2.extract_lane

/** `dots`, or with selfDot `norms(firstByteOffset, _, count, d, outPtr)`: out[i] = |row(first + i)|². */
const functionBody = (selfDot: boolean) => [
  // locals: 4 × i32, 2 × v128, 1 × f64
  3,
  4,
  i32,
  2,
  v128,
  1,
  f64,
  ...get(3),
  0x41,
  2,
  0x74,
  ...set(8), // dBytes = d << 2
  0x41,
  0,
  ...set(5), // i = 0
  0x02,
  0x40, // block $done
  0x03,
  0x40, // loop $outer
  ...get(5),
  ...get(2),
  0x4f,
  0x0d,
  1, // br_if $done (i >= count)
  ...(selfDot
    ? [...get(0), ...get(5), ...get(8), 0x6c, 0x6a] // first + i * dBytes
    : [...get(1), ...get(5), 0x41, 2, 0x74, 0x6a, 0x28, 0x02, 0x00, ...get(8), 0x6c]), // index[i] * dBytes
  ...set(6), // rowOff
  SIMD,
  0x0c,
  ...new Array(16).fill(0),
  0x22,
  9, // acc0 = 0 (local.tee)
  ...set(10), // acc1 = 0
  0x41,
  0,
  ...set(7), // k = 0
  0x02,
  0x40, // block $kdone
  0x03,
  0x40, // loop $inner
  ...get(7),
  0x41,
  16,
  0x6a,
  ...get(8),
  0x4b,
  0x0d,
  1, // br_if $kdone (k + 16 > dBytes)
  ...accumulate(9, 0, selfDot ? 6 : 0),
  ...accumulate(10, 8, selfDot ? 6 : 0),
  ...get(7),
  0x41,
  16,
  0x6a,
  ...set(7),
  0x0c,
  0, // br $inner
  0x0b,
  0x0b,
  ...lane(9, 0),
  ...lane(9, 1),
  0xa0,
  ...lane(10, 0),
  ...lane(10, 1),
  0xa0,
  0xa0,
  ...set(11), // sum = (acc0[0] + acc0[1]) + (acc1[0] + acc1[1])
  0x02,
  0x40, // block $tdone
  0x03,
  0x40, // loop $tail (d not a multiple of 4)
  ...get(7),
  ...get(8),
  0x4f,
  0x0d,
  1, // br_if $tdone (k >= dBytes)
  ...get(11),
  ...get(selfDot ? 6 : 0),
  ...get(7),
  0x6a,
  0x2a,
  0x02,
  0x00,
  0xbb, // f64.promote_f32(f32.load)
  ...get(6),
  ...get(7),
  0x6a,
  0x2a,
  0x02,
  0x00,
  0xbb,
  0xa2,
  0xa0,
  ...set(11), // sum += a·b
  ...get(7),
  0x41,
  4,
  0x6a,
  ...set(7),
  0x0c,
  0, // br $tail
  0x0b,
  0x0b,
  ...get(4),
  ...get(5),
  0x41,
  3,
  0x74,
  0x6a,
  ...get(11),
  0x39,
  0x03,
  0x00, // f64.store out[i] = sum
  ...get(5),
  0x41,
  1,
  0x6a,
  ...set(5), // i++
  0x0c,
  0, // br $outer
  0x0b,
  0x0b,
  0x0b, // end function
];

/** Rows compared at once by `dotsGroup`: independent accumulator chains hide the latency of the f64x2 adds. */
export const GROUP_ROWS = 4;

/**
 * `dotsGroup(seedByteOffset, indexPtr, count, d, outPtr)`: the same sums as `dots`, for count a multiple of
 * GROUP_ROWS, GROUP_ROWS rows at a time (each row's lanes are still summed in the same order, so the bits are equal).
 */
const groupBody = () => {
  const R = GROUP_ROWS;
  // locals: 5 i, 6 k, 7 dBytes, 8.. rowOff[r] | V seedLo, V+1 seedHi, V+2+2r accLo[r], V+3+2r accHi[r] | F+r sum[r]
  const rowOff = (r: number) => 8 + r;
  const V = 8 + R;
  const accLo = (r: number) => V + 2 + 2 * r;
  const accHi = (r: number) => V + 3 + 2 * r;
  const F = V + 2 + 2 * R;
  const sum = (r: number) => F + r;
  const loadPromote = (base: number, offset: number) => [
    ...get(base),
    ...get(6),
    0x6a,
    SIMD,
    0x5d,
    0x03,
    offset,
    SIMD,
    0x5f,
  ];
  const perRow = (f: (r: number) => number[]) => Array.from({ length: R }, (_, r) => f(r)).flat();
  return [
    3,
    3 + R,
    i32,
    2 + 2 * R,
    v128,
    R,
    f64,
    ...get(3),
    0x41,
    2,
    0x74,
    ...set(7), // dBytes = d << 2
    0x41,
    0,
    ...set(5), // i = 0
    0x02,
    0x40, // block $done
    0x03,
    0x40, // loop $group
    ...get(5),
    0x41,
    R,
    0x6a,
    ...get(2),
    0x4b,
    0x0d,
    1, // br_if $done (i + R > count)
    ...perRow((r) => [
      ...get(1),
      ...get(5),
      0x41,
      2,
      0x74,
      0x6a,
      0x28,
      0x02,
      4 * r,
      ...get(7),
      0x6c,
      ...set(rowOff(r)),
    ]),
    SIMD,
    0x0c,
    ...new Array(16).fill(0),
    ...perRow((r) => [0x22, accLo(r), 0x22, accHi(r)]),
    0x1a, // drop the zero left by the last tee
    0x41,
    0,
    ...set(6), // k = 0
    0x02,
    0x40, // block $kdone
    0x03,
    0x40, // loop $inner
    ...get(6),
    0x41,
    16,
    0x6a,
    ...get(7),
    0x4b,
    0x0d,
    1, // br_if $kdone (k + 16 > dBytes)
    ...loadPromote(0, 0),
    ...set(V),
    ...loadPromote(0, 8),
    ...set(V + 1),
    ...perRow((r) => [
      ...get(accLo(r)),
      ...get(V),
      ...loadPromote(rowOff(r), 0),
      SIMD,
      0xf2,
      0x01,
      SIMD,
      0xf0,
      0x01,
      ...set(accLo(r)),
      ...get(accHi(r)),
      ...get(V + 1),
      ...loadPromote(rowOff(r), 8),
      SIMD,
      0xf2,
      0x01,
      SIMD,
      0xf0,
      0x01,
      ...set(accHi(r)),
    ]),
    ...get(6),
    0x41,
    16,
    0x6a,
    ...set(6),
    0x0c,
    0, // br $inner
    0x0b,
    0x0b,
    ...perRow((r) => [
      ...lane(accLo(r), 0),
      ...lane(accLo(r), 1),
      0xa0,
      ...lane(accHi(r), 0),
      ...lane(accHi(r), 1),
      0xa0,
      0xa0,
      ...set(sum(r)),
    ]),
    0x02,
    0x40, // block $tdone
    0x03,
    0x40, // loop $tail
    ...get(6),
    ...get(7),
    0x4f,
    0x0d,
    1, // br_if $tdone (k >= dBytes)
    ...perRow((r) => [
      ...get(sum(r)),
      ...get(0),
      ...get(6),
      0x6a,
      0x2a,
      0x02,
      0x00,
      0xbb,
      ...get(rowOff(r)),
      ...get(6),
      0x6a,
      0x2a,
      0x02,
      0x00,
      0xbb,
      0xa2,
      0xa0,
      ...set(sum(r)),
    ]),
    ...get(6),
    0x41,
    4,
    0x6a,
    ...set(6),
    0x0c,
    0, // br $tail
    0x0b,
    0x0b,
    ...perRow((r) => [...get(4), ...get(5), 0x41, 3, 0x74, 0x6a, ...get(sum(r)), 0x39, 0x03, 8 * r]),
    ...get(5),
    0x41,
    R,
    0x6a,
    ...set(5), // i += R
    0x0c,
    0, // br $group
    0x0b,
    0x0b,
    0x0b, // end function
  ];
};

const uleb = (value: number): number[] => {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
};
const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];

const functionCode = (body: number[]) => [...uleb(body.length), ...body];

const moduleBytes = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  ...section(1, [1, 0x60, 5, i32, i32, i32, i32, i32, 0]),
  ...section(3, [3, 0, 0, 0]),
  ...section(5, [1, 0x00, 1]),
  ...section(7, [
    4,
    ...name('dots'),
    0x00,
    0,
    ...name('norms'),
    0x00,
    1,
    ...name('dotsGroup'),
    0x00,
    2,
    ...name('memory'),
    0x02,
    0,
  ]),
  ...section(10, [
    3,
    ...functionCode(functionBody(false)),
    ...functionCode(functionBody(true)),
    ...functionCode(groupBody()),
  ]),
]);

export interface SimdDots {
  /** Copies `rows` × d keys to the start of the memory, with room for `maxList` indices and results; false if too big. */
  load(keys: Float32Array, rows: number, maxList: number): boolean;
  /** Indices of the rows to compare (write count entries before calling `run`). */
  index: Int32Array;
  /** Results of the last `run`. */
  out: Float64Array;
  /** out[i] = row(seed) · row(index[from + i]) for i < count. */
  run(seed: number, from: number, count: number, d: number): void;
  /** Squared norms of the first `count` rows into `norms` (bitwise equal to a row's dot with itself via `run`). */
  squaredNorms(count: number, d: number, norms: Float64Array): void;
}

/** The slice of the WebAssembly API used here (the package compiles without DOM typings). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
interface KernelExports {
  dots: (seedOff: number, indexPtr: number, count: number, d: number, outPtr: number) => void;
  norms: (firstOff: number, unused: number, count: number, d: number, outPtr: number) => void;
  dotsGroup: (seedOff: number, indexPtr: number, count: number, d: number, outPtr: number) => void;
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
}

let instance: SimdDots | null | undefined;

/** The SIMD kernel, or null where WebAssembly SIMD is unavailable (the caller then uses its scalar loop). */
export function simdDots(): SimdDots | null {
  if (instance !== undefined) return instance;
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined || !wasm.validate(moduleBytes)) {
    instance = null;
    return instance;
  }
  const exports = new wasm.Instance(new wasm.Module(moduleBytes)).exports as KernelExports;
  const memory = exports.memory;
  let indexPtr = 0;
  let outPtr = 0;
  let normsPtr = 0;
  const kernel: SimdDots = {
    index: new Int32Array(0),
    out: new Float64Array(0),
    load(keys, rows, maxList) {
      const keyBytes = (keys.byteLength + 7) & ~7;
      indexPtr = keyBytes;
      outPtr = keyBytes + ((maxList * 4 + 7) & ~7);
      normsPtr = outPtr + maxList * 8;
      const needed = normsPtr + rows * 8;
      if (needed > memory.buffer.byteLength) {
        try {
          memory.grow(Math.ceil((needed - memory.buffer.byteLength) / 65536));
        } catch {
          return false; // past the 4 GiB of 32-bit WebAssembly memory
        }
      }
      new Float32Array(memory.buffer, 0, keys.length).set(keys);
      kernel.index = new Int32Array(memory.buffer, indexPtr, maxList);
      kernel.out = new Float64Array(memory.buffer, outPtr, maxList);
      return true;
    },
    run(seed, from, count, d) {
      const grouped = count - (count % GROUP_ROWS);
      if (grouped > 0) exports.dotsGroup(seed * d * 4, indexPtr + from * 4, grouped, d, outPtr);
      if (grouped < count) {
        exports.dots(seed * d * 4, indexPtr + (from + grouped) * 4, count - grouped, d, outPtr + grouped * 8);
      }
    },
    squaredNorms(count, d, norms) {
      exports.norms(0, 0, count, d, normsPtr);
      norms.set(new Float64Array(memory.buffer, normsPtr, count));
    },
  };
  instance = kernel;
  return instance;
}
