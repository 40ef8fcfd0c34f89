import { describe, expect, it } from 'vitest';
import { wasmBase64 } from './fp16.wasm.js';
import { compileWasm, growMemory, instantiateWasm, MAX_WASM_PAGES, WASM_PAGE_BYTES, WasmInstances } from './wasm.js';

type Codec = { encode(src: number, dst: number, count: number): void };

describe('WebAssembly loading', () => {
  it('compiles a module, or gives null for bytes this runtime cannot validate', () => {
    expect(compileWasm(wasmBase64)).not.toBeNull();
    expect(compileWasm(btoa('\0asm\x01\0\0\0\x01'))).toBeNull();
  });

  it('instantiates with a memory of the pages asked for, imported by the module', () => {
    const { memory, exports } = instantiateWasm<Codec>(wasmBase64, 2);
    expect(memory.buffer.byteLength).toBe(2 * WASM_PAGE_BYTES);
    new Float32Array(memory.buffer, 64, 8).set([1, 2, 0.5, -2, 0, 65504, 1e9, -0]);
    exports.encode(64, 0, 8);
    expect(Array.from(new Uint16Array(memory.buffer, 0, 8))).toEqual([
      0x3c00, 0x4000, 0x3800, 0xc000, 0, 0x7bff, 0x7c00, 0x8000,
    ]);
  });

  it('grows a memory to hold a size, and says false past 4 GiB', () => {
    const { memory } = instantiateWasm(wasmBase64, 1);
    expect(growMemory(memory, WASM_PAGE_BYTES)).toBe(true);
    expect(memory.buffer.byteLength).toBe(WASM_PAGE_BYTES);
    expect(growMemory(memory, 3 * WASM_PAGE_BYTES + 1)).toBe(true);
    expect(memory.buffer.byteLength).toBe(4 * WASM_PAGE_BYTES);
    expect(growMemory(memory, MAX_WASM_PAGES * WASM_PAGE_BYTES + 1)).toBe(false);
    expect(memory.buffer.byteLength).toBe(4 * WASM_PAGE_BYTES);
  });

  it('keeps one instance up to the retained size, grown as needed, and gives larger calls their own', () => {
    const instances = new WasmInstances<Codec>(wasmBase64, 4 * WASM_PAGE_BYTES);
    const fail = (cause?: unknown) => new RangeError('too large', { cause });
    const first = instances.holding(100, fail);
    expect(first.memory.buffer.byteLength).toBe(WASM_PAGE_BYTES);
    const grown = instances.holding(3 * WASM_PAGE_BYTES, fail);
    expect(grown).toBe(first);
    expect(grown.memory.buffer.byteLength).toBe(3 * WASM_PAGE_BYTES);
    const large = instances.holding(5 * WASM_PAGE_BYTES, fail);
    expect(large).not.toBe(first);
    expect(large.memory.buffer.byteLength).toBe(5 * WASM_PAGE_BYTES);
    expect(instances.holding(10, fail)).toBe(first);
    expect(() => instances.holding(MAX_WASM_PAGES * WASM_PAGE_BYTES + 1, fail)).toThrow('too large');
  });
});
