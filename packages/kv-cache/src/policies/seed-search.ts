import { growMemory, instantiateWasm, type WasmMemory } from '@semanticache/internal';
import { wasmBase64 } from '../join.wasm.js';

/** Where each entry's best seed is: its index in the seed list (-1: no candidate), the dot product, the entry's ‖k‖². */
export interface SeedMatches {
  best: Int32Array;
  dot: Float32Array;
  squares: Float32Array;
}

interface Search {
  memory: WasmMemory;
  nearest: (
    keys: number,
    count: number,
    unit: number,
    lo: number,
    hi: number,
    d: number,
    best: number,
    bestDot: number,
    squares: number,
  ) => void;
}

let search: Search | undefined;

function instance(): Search {
  if (search !== undefined) return search;
  const { memory, exports } = instantiateWasm(wasmBase64, 64);
  search = { memory, nearest: exports.nearest as Search['nearest'] };
  return search;
}

/**
 * For each of the `count` rows of `keys` (count × d), the row of `unit` (seed unit keys, × d) in [lo[i], hi[i]) with
 * the largest dot product, in a WebAssembly SIMD module (assembly/join.ts, `pnpm build:wasm`). Ranges must lie
 * within the unit rows; an empty range gives -1.
 */
export function nearestSeeds(
  keys: Float32Array,
  count: number,
  unit: Float32Array,
  lo: Int32Array,
  hi: Int32Array,
  d: number,
): SeedMatches {
  const { memory, nearest } = instance();
  const keyBytes = count * d * 4;
  const unitBytes = unit.length * 4;
  const need = keyBytes + unitBytes + count * 4 * 5;
  if (!growMemory(memory, need)) {
    throw new RangeError(`nearestSeeds: needs ${need} bytes of WebAssembly memory, more than available`);
  }
  const heap = memory.buffer;
  let at = 0;
  const place = <T extends Float32Array | Int32Array>(src: T): number => {
    new (src.constructor as new (b: ArrayBuffer, o: number, n: number) => T)(heap, at, src.length).set(src);
    const where = at;
    at += src.length * 4;
    return where;
  };
  const keysAt = place(keys.subarray(0, count * d));
  const unitAt = place(unit);
  const loAt = place(lo.subarray(0, count));
  const hiAt = place(hi.subarray(0, count));
  const bestAt = at;
  const dotAt = bestAt + count * 4;
  const squaresAt = dotAt + count * 4;
  nearest(keysAt, count, unitAt, loAt, hiAt, d, bestAt, dotAt, squaresAt);
  return {
    best: new Int32Array(heap, bestAt, count).slice(),
    dot: new Float32Array(heap, dotAt, count).slice(),
    squares: new Float32Array(heap, squaresAt, count).slice(),
  };
}
