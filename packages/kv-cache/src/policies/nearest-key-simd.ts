/**
 * The merge-values nearest-target search as a tiny hand-assembled WebAssembly SIMD module. It computes exactly the
 * canonical scores of `nearest-key.ts` (float64 sums of exact float32 products, in column order) with f64x2 lanes
 * holding two TARGETS, never two columns, so each lane's sum runs in the same order as the scalar loop and the chosen
 * indices are bitwise the same. Two queries × six targets share each sweep over the columns.
 *
 * Export `nearest(queryPtr, queryCount, targetPtr, pairCount, d, outPtr)`: queries are float64 rows (queryCount even);
 * targets are float64 in blocks of PAIRS pairs, column-interleaved: element (block b, column j, pair m, lane l) at
 * (((b·d + j)·PAIRS + m)·2 + l)·8 bytes, so one column of a block is PAIRS contiguous v128 values; pairCount is a
 * multiple of PAIRS (padding targets are NaN, which never win); out[i] is an int32 target index.
 */

const SIMD = 0xfd;
const i32 = 0x7f;
const f64 = 0x7c;
const v128 = 0x7b;

/** Target pairs per sweep: 2 queries × 3 pairs (6 running sums) measured ~15 % faster than × 4 or × 6 pairs. */
const PAIRS = 3;
// params: 0 queryPtr, 1 queryCount, 2 targetPtr, 3 pairCount, 4 d, 5 outPtr; then 9 i32, 3 f64 and 2·PAIRS + 3 v128
const I = 6;
const ROW_A = 7;
const ROW_B = 8;
const PAIR = 9;
const COL = 10; // byte offset of column j in a query row
const ROW_BYTES = 11;
const BEST_A_INDEX = 12;
const BEST_B_INDEX = 13;
const COL_ADDR = 14; // column j of the current block
const BEST_A = 15;
const BEST_B = 16;
const SCORE = 17;
const SA = 18; // PAIRS running sums of query A, then PAIRS of query B
const SB = SA + PAIRS;
const XA = SA + 2 * PAIRS;
const XB = XA + 1;
const U = XA + 2;
const get = (l: number) => [0x20, l];
const set = (l: number) => [0x21, l];
const i32const = (v: number) => [0x41, v]; // small non-negative values only (< 64)
const add = 0x6a;
const shl = 0x74;
const geU = 0x4f;
const negInfinity = [0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0xff];
const zeroV128 = [SIMD, 0x0c, ...new Array(16).fill(0)];
const BLOCK_COL_BYTES = PAIRS * 16;
/** u = column j of pair m of the block; sumA_m += xA·u; sumB_m += xB·u. */
const multiplyAdd = (m: number) => [
  ...get(COL_ADDR),
  SIMD,
  0x00,
  0x04,
  m * 16,
  ...set(U),
  ...get(SA + m),
  ...get(XA),
  ...get(U),
  SIMD,
  0xf2,
  0x01,
  SIMD,
  0xf0,
  0x01,
  ...set(SA + m),
  ...get(SB + m),
  ...get(XB),
  ...get(U),
  SIMD,
  0xf2,
  0x01,
  SIMD,
  0xf0,
  0x01,
  ...set(SB + m),
];
/** if (lane > best) { best = lane; index = pair·2 + offset } — strict, in target order, so ties keep the lowest. */
const pick = (sum: number, lane: number, best: number, index: number, offset: number) => [
  ...get(sum),
  SIMD,
  0x21,
  lane,
  0x22,
  SCORE,
  ...get(best),
  0x64,
  0x04,
  0x40,
  ...get(SCORE),
  ...set(best),
  ...get(PAIR),
  ...i32const(1),
  shl,
  ...i32const(offset),
  add,
  ...set(index),
  0x0b,
];
const range = Array.from({ length: PAIRS }, (_, m) => m);
const body = [
  3,
  9,
  i32,
  3,
  f64,
  2 * PAIRS + 3,
  v128,
  ...get(4),
  ...i32const(3),
  shl,
  ...set(ROW_BYTES),
  ...i32const(0),
  ...set(I),
  ...get(0),
  ...set(ROW_A),
  0x02,
  0x40,
  0x03,
  0x40,
  ...get(I),
  ...get(1),
  geU,
  0x0d,
  1,
  ...get(ROW_A),
  ...get(ROW_BYTES),
  add,
  ...set(ROW_B),
  ...negInfinity,
  ...set(BEST_A),
  ...negInfinity,
  ...set(BEST_B),
  ...i32const(0),
  ...set(BEST_A_INDEX),
  ...i32const(0),
  ...set(BEST_B_INDEX),
  ...i32const(0),
  ...set(PAIR),
  ...get(2),
  ...set(COL_ADDR),
  0x02,
  0x40,
  0x03,
  0x40,
  ...get(PAIR),
  ...get(3),
  geU,
  0x0d,
  1,
  ...range.flatMap((m) => [...zeroV128, ...set(SA + m), ...zeroV128, ...set(SB + m)]),
  ...i32const(0),
  ...set(COL),
  0x02,
  0x40,
  0x03,
  0x40,
  ...get(COL),
  ...get(ROW_BYTES),
  geU,
  0x0d,
  1,
  ...get(ROW_A),
  ...get(COL),
  add,
  SIMD,
  0x0a,
  0x03,
  0x00,
  ...set(XA),
  ...get(ROW_B),
  ...get(COL),
  add,
  SIMD,
  0x0a,
  0x03,
  0x00,
  ...set(XB),
  ...range.flatMap(multiplyAdd),
  ...get(COL),
  ...i32const(8),
  add,
  ...set(COL),
  ...get(COL_ADDR),
  0x41,
  BLOCK_COL_BYTES,
  add,
  ...set(COL_ADDR),
  0x0c,
  0,
  0x0b,
  0x0b,
  ...range.flatMap((m) => [
    ...pick(SA + m, 0, BEST_A, BEST_A_INDEX, 2 * m),
    ...pick(SA + m, 1, BEST_A, BEST_A_INDEX, 2 * m + 1),
  ]),
  ...range.flatMap((m) => [
    ...pick(SB + m, 0, BEST_B, BEST_B_INDEX, 2 * m),
    ...pick(SB + m, 1, BEST_B, BEST_B_INDEX, 2 * m + 1),
  ]),
  ...get(PAIR),
  ...i32const(PAIRS),
  add,
  ...set(PAIR),
  0x0c,
  0,
  0x0b,
  0x0b,
  ...get(5),
  ...get(I),
  ...i32const(2),
  shl,
  add,
  0x22,
  COL_ADDR,
  ...get(BEST_A_INDEX),
  0x36,
  0x02,
  0x00,
  ...get(COL_ADDR),
  ...get(BEST_B_INDEX),
  0x36,
  0x02,
  0x04,
  ...get(I),
  ...i32const(2),
  add,
  ...set(I),
  ...get(ROW_B),
  ...get(ROW_BYTES),
  add,
  ...set(ROW_A),
  0x0c,
  0,
  0x0b,
  0x0b,
  0x0b,
];
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

const moduleBytes = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  ...section(1, [1, 0x60, 6, i32, i32, i32, i32, i32, i32, 0]),
  ...section(3, [1, 0]),
  ...section(5, [1, 0x00, 1]),
  ...section(7, [2, ...name('nearest'), 0x00, 0, ...name('memory'), 0x02, 0]),
  ...section(10, [1, ...uleb(body.length), ...body]),
]);

/** The slice of the WebAssembly API used here (the package compiles without DOM typings). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
interface KernelExports {
  nearest: (queryPtr: number, queryCount: number, targetPtr: number, pairCount: number, d: number, out: number) => void;
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
}

/** Same contract as `nearestTargets` in nearest-key.ts; false when the inputs do not fit in 32-bit wasm memory. */
export type NearestTargetsSimd = (
  queries: Float32Array,
  queryCount: number,
  targets: Float32Array,
  targetCount: number,
  d: number,
  nearest: Int32Array,
) => boolean;

let kernel: NearestTargetsSimd | null | undefined;

/** The SIMD search, or null where WebAssembly SIMD is unavailable (the caller then uses the scalar search). */
export function nearestTargetsSimd(): NearestTargetsSimd | null {
  if (kernel !== undefined) return kernel;
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined || !wasm.validate(moduleBytes)) {
    kernel = null;
    return kernel;
  }
  const exports = new wasm.Instance(new wasm.Module(moduleBytes)).exports as KernelExports;
  const memory = exports.memory;
  kernel = (queries, queryCount, targets, targetCount, d, nearest) => {
    if (targetCount === 0) {
      nearest.fill(-1, 0, queryCount);
      return true;
    }
    const rows = queryCount + (queryCount & 1);
    const blocks = Math.ceil(targetCount / (2 * PAIRS));
    const pairs = blocks * PAIRS;
    const queryBytes = rows * d * 8;
    const targetBytes = pairs * 2 * d * 8;
    const needed = queryBytes + targetBytes + rows * 4;
    if (needed > memory.buffer.byteLength) {
      try {
        memory.grow(Math.ceil((needed - memory.buffer.byteLength) / 65536));
      } catch {
        return false; // past the 4 GiB of 32-bit WebAssembly memory
      }
    }
    const queryRows = new Float64Array(memory.buffer, 0, rows * d);
    queryRows.set(queries.subarray(0, queryCount * d));
    // an odd count is padded with a copy of the last row, whose answer is dropped
    if (rows > queryCount) queryRows.copyWithin(queryCount * d, (queryCount - 1) * d, queryCount * d);
    const blockRows = new Float64Array(memory.buffer, queryBytes, pairs * 2 * d);
    blockRows.fill(Number.NaN);
    const width = 2 * PAIRS;
    for (let t = 0; t < targetCount; t++) {
      const block = Math.floor(t / width);
      const base = block * d * width + (t - block * width);
      const from = t * d;
      for (let j = 0; j < d; j++) blockRows[base + j * width] = targets[from + j];
    }
    const outPtr = queryBytes + targetBytes;
    exports.nearest(0, rows, queryBytes, pairs, d, outPtr);
    nearest.set(new Int32Array(memory.buffer, outPtr, queryCount));
    return true;
  };
  return kernel;
}
