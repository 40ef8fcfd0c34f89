export {
  decodeFloat16BitsRun,
  decodeFloat16Run,
  encodeFloat16Run,
  float16BitsToFloat32,
  float16BitsToFloat32Array,
  float32ArrayToFloat16Bits,
  float32ToFloat16Bits,
} from './fp16.js';
export { isIntegerIn } from './integer.js';
export { rng } from './rng.js';
export type { HeadCache, KVDtype } from './types.js';
export {
  compileWasm,
  growMemory,
  instantiateWasm,
  MAX_WASM_PAGES,
  WASM_PAGE_BYTES,
  WasmInstances,
  type WasmMemory,
  type WasmModule,
} from './wasm.js';
