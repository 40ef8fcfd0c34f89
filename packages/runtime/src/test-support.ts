// Helpers shared by the tests (not exported from the package).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HeadCache } from './attention.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const parityDir = (name: string) => path.join(repoRoot, 'fixtures', 'parity', name);
export const storiesDir = path.join(repoRoot, 'fixtures', 'stories260K');
export const demoDir = path.join(repoRoot, 'packages', 'model-demo', 'weights');
export const retrievalDir = path.join(repoRoot, 'packages', 'model-demo-retrieval', 'weights');
export const PARITY_MODELS = ['llama-mha-tied', 'llama-gqa', 'llama3-rope-scaling', 'qwen2-qkv-bias', 'mistral-gqa'];

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A growable fp32 cache with no compression: the simplest thing the forward pass can run over. */
export class PlainCache {
  private layers: { keys: Float32Array; values: Float32Array; length: number }[][];
  constructor(
    numLayers: number,
    private numKvHeads: number,
    private headDim: number,
  ) {
    this.layers = Array.from({ length: numLayers }, () =>
      Array.from({ length: numKvHeads }, () => ({ keys: new Float32Array(0), values: new Float32Array(0), length: 0 })),
    );
  }
  append(layer: number, keys: Float32Array, values: Float32Array): void {
    const d = this.headDim;
    const m = keys.length / (this.numKvHeads * d);
    this.layers[layer].forEach((h, g) => {
      const k = new Float32Array((h.length + m) * d);
      const v = new Float32Array((h.length + m) * d);
      k.set(h.keys.subarray(0, h.length * d));
      v.set(h.values.subarray(0, h.length * d));
      for (let i = 0; i < m; i++) {
        k.set(keys.subarray((i * this.numKvHeads + g) * d, (i * this.numKvHeads + g + 1) * d), (h.length + i) * d);
        v.set(values.subarray((i * this.numKvHeads + g) * d, (i * this.numKvHeads + g + 1) * d), (h.length + i) * d);
      }
      h.keys = k;
      h.values = v;
      h.length += m;
    });
  }
  heads(layer: number): HeadCache[] {
    return this.layers[layer].map((h) => ({
      keys: h.keys,
      values: h.values,
      logSizes: new Float32Array(h.length),
      length: h.length,
    }));
  }
}
