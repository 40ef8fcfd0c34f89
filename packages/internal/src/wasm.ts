/**
 * Loading the WebAssembly modules that tools/build-wasm.mjs generates (AssemblyScript, SIMD, memory imported as
 * `env.memory`, bytes in base64 in a `*.wasm.ts` file). The callers lay their inputs out at the start of the memory
 * on every call, so an instance's memory only has to be grown to the largest call so far.
 */

/** A growable WebAssembly memory. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** A compiled module (WebAssembly.Module). */
export type WasmModule = object;

/** The slice of the WebAssembly API used here (the packages compile without DOM typings). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
}

export const WASM_PAGE_BYTES = 65536;
/** 4 GiB, all a 32-bit WebAssembly memory can address. */
export const MAX_WASM_PAGES = 65536;

function api(): WasmApi | undefined {
  return (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
}

function required(): WasmApi {
  const wasm = api();
  if (wasm === undefined) throw new Error('WebAssembly is not available in this JavaScript runtime');
  return wasm;
}

function decodeBase64(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** Compiles a module given as base64; null where WebAssembly, or a feature the module uses (SIMD), is unavailable. */
export function compileWasm(base64: string): WasmModule | null {
  const wasm = api();
  const bytes = decodeBase64(base64);
  if (wasm === undefined || !wasm.validate(bytes)) return null;
  return new wasm.Module(bytes);
}

/** Instantiates a module (compiled, or base64 to compile) with a fresh memory of `initialPages` × 64 KiB. */
export function instantiateWasm<E = Record<string, unknown>>(
  module: WasmModule | string,
  initialPages: number,
): { memory: WasmMemory; exports: E } {
  const wasm = required();
  const compiled = typeof module === 'string' ? new wasm.Module(decodeBase64(module)) : module;
  const memory = new wasm.Memory({ initial: initialPages });
  const { exports } = new wasm.Instance(compiled, { env: { memory } });
  return { memory, exports: exports as E };
}

/** Grows `memory` to hold at least `bytes`; false where it cannot (past 4 GiB, or the engine refuses the pages). */
export function growMemory(memory: WasmMemory, bytes: number): boolean {
  const have = memory.buffer.byteLength;
  if (bytes <= have) return true;
  const pages = Math.ceil((bytes - have) / WASM_PAGE_BYTES);
  if (have / WASM_PAGE_BYTES + pages > MAX_WASM_PAGES) return false;
  try {
    memory.grow(pages);
    return true;
  } catch {
    return false;
  }
}

/** Memory an instance keeps between calls, by default: calls that need more get an instance of their own. */
const RETAINED_BYTES = 64 * 2 ** 20;

/**
 * One module compiled once, and the instance whose memory holds a call's data: the retained instance, grown as
 * needed up to `retainedBytes`, or for a larger call an instance of its own that is freed with it.
 */
export class WasmInstances<E> {
  private compiled: WasmModule | undefined;
  private retained: { memory: WasmMemory; exports: E } | undefined;

  constructor(
    private readonly base64: string,
    private readonly retainedBytes = RETAINED_BYTES,
  ) {}

  /** An instance whose memory holds `bytes`; `fail(cause)` builds the error thrown when no such memory can be had. */
  holding(bytes: number, fail: (cause?: unknown) => Error): { memory: WasmMemory; exports: E } {
    const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE_BYTES));
    if (pages > MAX_WASM_PAGES) throw fail();
    try {
      this.compiled ??= new (required().Module)(decodeBase64(this.base64));
      if (bytes > this.retainedBytes) return instantiateWasm<E>(this.compiled, pages);
      this.retained ??= instantiateWasm<E>(this.compiled, pages);
      const have = this.retained.memory.buffer.byteLength / WASM_PAGE_BYTES;
      if (have < pages) this.retained.memory.grow(pages - have);
      return this.retained;
    } catch (error) {
      throw fail(error);
    }
  }
}
