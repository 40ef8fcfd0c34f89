/**
 * The clustering passes run in a WebAssembly SIMD module compiled from assembly/gsc.ts (`pnpm build:wasm` rebuilds
 * src/gsc.wasm.ts). Inputs are laid out at the start of a memory on every call; one instance and its memory are kept
 * between calls up to 64 MiB, and a call that needs more gets an instance of its own, freed with it.
 */
import { WasmInstances } from '@semanticache/internal';
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

const instances = new WasmInstances<GscExports>(wasmBase64);

/** Bump allocator over a module instance's memory, 16-byte aligned. */
export class Layout {
  private end = 0;

  take(bytes: number): number {
    const at = this.end;
    this.end += Math.ceil(bytes / 16) * 16;
    return at;
  }

  /** An instance whose memory holds everything taken, and that memory's buffer. */
  instance(what: string): { exports: GscExports; buffer: ArrayBuffer } {
    const { exports, memory } = instances.holding(
      this.end,
      (cause) =>
        new RangeError(`${what}: needs ${this.end} bytes of WebAssembly memory, more than available`, { cause }),
    );
    return { exports, buffer: memory.buffer };
  }
}
