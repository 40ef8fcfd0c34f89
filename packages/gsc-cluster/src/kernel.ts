/**
 * The clustering passes run in a WebAssembly SIMD module compiled from assembly/gsc.ts (`pnpm build:wasm` rebuilds
 * src/gsc.wasm.ts). Inputs are laid out at the start of a memory on every call; one instance and its memory are kept
 * between calls up to RETAINED_BYTES, and a call that needs more gets an instance of its own, freed with it.
 */
import { wasmBase64 } from './gsc.wasm.js';

export interface GscExports {
  setup(...addresses: number[]): void;
  squaredNorms(): number;
  buildGram(): void;
  pass(tauKey: number, record: number): number;
  passCentroid(limit: number, record: number): number;
  exactKey(token: number): number;
  screeningMargin(): number;
}

/** The slice of the WebAssembly API used here (the package compiles without DOM typings). */
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface Kernel {
  exports: GscExports;
  memory: WasmMemory;
}

const PAGE_BYTES = 65536;
/** 4 GiB, all a 32-bit WebAssembly memory can address. */
const MAX_PAGES = 65536;
const RETAINED_BYTES = 64 * 2 ** 20;

let compiled: object | undefined;
let retained: Kernel | undefined;

function instantiate(pages: number): Kernel {
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  compiled ??= new wasm.Module(Uint8Array.from(atob(wasmBase64), (c) => c.charCodeAt(0)));
  const memory = new wasm.Memory({ initial: pages });
  return { exports: new wasm.Instance(compiled, { env: { memory } }).exports as GscExports, memory };
}

/** Bump allocator over a kernel's memory, 16-byte aligned. */
export class Layout {
  private end = 0;

  take(bytes: number): number {
    const at = this.end;
    this.end += Math.ceil(bytes / 16) * 16;
    return at;
  }

  /** A kernel whose memory holds everything taken, and that memory's buffer. */
  kernel(what: string): { exports: GscExports; buffer: ArrayBuffer } {
    const pages = Math.max(1, Math.ceil(this.end / PAGE_BYTES));
    const fail = (cause?: unknown) =>
      new RangeError(`${what}: needs ${this.end} bytes of WebAssembly memory, more than available`, { cause });
    if (pages > MAX_PAGES) throw fail();
    try {
      let kernel: Kernel;
      if (this.end > RETAINED_BYTES) kernel = instantiate(pages);
      else {
        retained ??= instantiate(pages);
        const have = retained.memory.buffer.byteLength / PAGE_BYTES;
        if (have < pages) retained.memory.grow(pages - have);
        kernel = retained;
      }
      return { exports: kernel.exports, buffer: kernel.memory.buffer };
    } catch (error) {
      throw fail(error);
    }
  }
}
