/** A growable WebAssembly memory, as the modules of this package import it. */
export interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** Instantiates a module given as base64 (the generated `*.wasm.ts`) with a fresh memory of `initialPages` × 64 KiB. */
export function instantiateWasm(
  base64: string,
  initialPages: number,
): { memory: WasmMemory; exports: Record<string, unknown> } {
  const wasm = (
    globalThis as unknown as {
      WebAssembly: {
        Memory: new (d: { initial: number }) => WasmMemory;
        Module: new (bytes: Uint8Array) => object;
        Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
      };
    }
  ).WebAssembly;
  const memory = new wasm.Memory({ initial: initialPages });
  const { exports } = new wasm.Instance(new wasm.Module(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))), {
    env: { memory },
  });
  return { memory, exports };
}
