/**
 * merge-values' nearest-target search in a WebAssembly SIMD module (assembly/nearest-key.ts, `pnpm build:wasm`),
 * bitwise the same answers as `nearestTargets` in nearest-key.ts. This side lays the inputs out for it: queries as
 * float64 rows (an even count), targets as float64 in column-interleaved blocks of 2 × PAIRS targets (padded with NaN).
 */
import { compileWasm, growMemory, instantiateWasm, type WasmMemory } from '@semanticache/internal';
import { wasmBase64 } from './nearest-key.wasm.js';

interface NearestKeyExports {
  nearest: (queryPtr: number, queryCount: number, targetPtr: number, pairCount: number, d: number, out: number) => void;
  /** Target pairs per block. */
  PAIRS: { value: number };
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

let search: NearestTargetsSimd | null | undefined;

/** The SIMD search, or null where WebAssembly SIMD is unavailable (the caller then uses the scalar search). */
export function nearestTargetsSimd(): NearestTargetsSimd | null {
  if (search !== undefined) return search;
  const compiled = compileWasm(wasmBase64);
  if (compiled === null) {
    search = null;
    return search;
  }
  const { exports, memory }: { exports: NearestKeyExports; memory: WasmMemory } = instantiateWasm(compiled, 1);
  const PAIRS = exports.PAIRS.value;
  search = (queries, queryCount, targets, targetCount, d, nearest) => {
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
    if (!growMemory(memory, needed)) return false; // past the 4 GiB of 32-bit WebAssembly memory
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
  return search;
}
