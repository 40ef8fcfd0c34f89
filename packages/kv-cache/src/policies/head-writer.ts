import { encodeFloat16Run } from '@semanticache/internal';
import type { HeadPlan } from '../plan.js';
import type { HeadView, KVCache } from '../store.js';

/** Collects a head's new entries in the cache's storage dtype; raw entries are copied bit for bit. */
export class HeadWriter {
  readonly keys: Float32Array | Uint16Array;
  readonly values: Float32Array | Uint16Array;
  readonly logSizes: Float32Array;
  readonly positions: Float64Array;
  readonly origins: Int32Array;
  length = 0;
  private readonly d: number;
  private readonly bitViews = new Map<Float32Array, Uint32Array>();

  constructor(cache: KVCache, capacity: number) {
    this.d = cache.headDim;
    const Storage = cache.dtype === 'float16' ? Uint16Array : Float32Array;
    this.keys = new Storage(capacity * this.d);
    this.values = new Storage(capacity * this.d);
    this.logSizes = new Float32Array(capacity);
    this.positions = new Float64Array(capacity);
    this.origins = new Int32Array(capacity);
  }

  /** Copies entry i of `view` unchanged; returns its new index. */
  copy(view: HeadView, i: number): number {
    const d = this.d;
    const at = this.length++;
    const src = i * d;
    const dst = at * d;
    for (let j = 0; j < d; j++) {
      this.keys[dst + j] = view.keys[src + j];
      this.values[dst + j] = view.values[src + j];
    }
    this.logSizes[at] = view.logSizes[i];
    this.positions[at] = view.positions[i];
    this.origins[at] = view.origins[i];
    return at;
  }

  /** Copies entries [from, to) of `view` unchanged, recording their new indices in `remap`. */
  copyRange(view: HeadView, from: number, to: number, remap: Int32Array): void {
    const at = this.length;
    this.copyBlock(view, from, to);
    for (let i = 0; i < to - from; i++) remap[from + i] = at + i;
  }

  private copyBlock(view: HeadView, from: number, to: number): void {
    const d = this.d;
    const at = this.length;
    this.keys.set(view.keys.subarray(from * d, to * d) as Float32Array, at * d);
    this.values.set(view.values.subarray(from * d, to * d) as Float32Array, at * d);
    this.logSizes.set(view.logSizes.subarray(from, to), at);
    this.positions.set(view.positions.subarray(from, to), at);
    this.origins.set(view.origins.subarray(from, to), at);
    this.length += to - from;
  }

  /** Copies entry i of `view` with its value replaced by an fp32 row. */
  copyWithValue(view: HeadView, i: number, value: Float32Array): number {
    const at = this.copy(view, i);
    this.writeRow(this.values, at, value, 0);
    return at;
  }

  /** Appends a new entry from row `row` of fp32 key and value matrices. */
  push(
    keys: Float32Array,
    values: Float32Array,
    row: number,
    logSize: number,
    position: number,
    origin: number,
  ): number {
    const at = this.length++;
    this.writeRow(this.keys, at, keys, row * this.d);
    this.writeRow(this.values, at, values, row * this.d);
    this.logSizes[at] = logSize;
    this.positions[at] = position;
    this.origins[at] = origin;
    return at;
  }

  commit(cache: KVCache, layer: number, head: number): void {
    cache.replace(layer, head, this);
  }

  private writeRow(dst: Float32Array | Uint16Array, at: number, src: Float32Array, offset: number): void {
    const d = this.d;
    if (dst instanceof Float32Array) {
      for (let j = 0; j < d; j++) dst[at * d + j] = src[offset + j];
      return;
    }
    // bit views of the (few) source matrices, made once each rather than per row
    let bits = this.bitViews.get(src);
    if (!bits) {
      bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
      this.bitViews.set(src, bits);
    }
    encodeFloat16Run(bits, offset, dst, at * d, d);
  }
}

/**
 * Keeps the sinks, the given compressible entries (ascending indices) and the window; returns the old → new index
 * map (-1 = evicted).
 */
export function keepEntries(
  cache: KVCache,
  layer: number,
  head: number,
  plan: HeadPlan,
  keptMiddle: Int32Array,
): Int32Array {
  const view = cache.head(layer, head);
  const writer = new HeadWriter(cache, plan.sinkEnd + keptMiddle.length + (plan.length - plan.windowStart));
  const remap = new Int32Array(plan.length).fill(-1);
  writer.copyRange(view, 0, plan.sinkEnd, remap);
  for (const i of keptMiddle) remap[i] = writer.copy(view, i);
  writer.copyRange(view, plan.windowStart, plan.length, remap);
  writer.commit(cache, layer, head);
  return remap;
}

/** Identity map, for heads a policy leaves as they are. */
export function identityRemap(length: number): Int32Array {
  const remap = new Int32Array(length);
  for (let i = 0; i < length; i++) remap[i] = i;
  return remap;
}

/** Indices of the `count` highest scores in [from, to), ties to the earlier entry, returned in ascending order. */
export function topIndices(scores: Float32Array | Float64Array, from: number, to: number, count: number): Int32Array {
  const out = new Int32Array(Math.max(0, Math.min(count, to - from)));
  if (out.length === 0) return out;
  // the count-th highest score by a numeric typed-array sort, then one pass in index order: every score above it,
  // and the earliest of those equal to it
  const sorted = scores.slice(from, to).sort();
  const cut = sorted[sorted.length - out.length];
  let above = 0;
  for (let i = sorted.length - out.length + 1; i < sorted.length; i++) if (sorted[i] > cut) above++;
  let ties = out.length - above;
  let w = 0;
  for (let i = from; i < to && w < out.length; i++) {
    const s = scores[i];
    if (s > cut || (s === cut && ties-- > 0)) out[w++] = i;
  }
  return out;
}
