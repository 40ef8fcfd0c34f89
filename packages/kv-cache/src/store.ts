import {
  float16BitsToFloat32Array,
  float32ArrayToFloat16Bits,
  type HeadCache,
  isIntegerIn,
  type KVDtype,
} from '@semanticache/internal';
import { SnapshotError } from './errors.js';
import { decodeSnapshot, encodeSnapshot, type SnapshotState } from './snapshot.js';

export type { HeadCache, KVDtype };

/** A zero-copy view of one head's live entries: the kernel's HeadCache plus the bookkeeping compression needs. */
export interface HeadView extends HeadCache {
  /** original position of each entry (a core keeps its members' mean or first position) */
  positions: Float64Array;
  /** ordinal, in append order, of the first token each entry covers (raw entries: their own ordinal) */
  origins: Int32Array;
}

/** New contents for one head. keys/values as fp32, or as fp16 bits when the cache stores fp16. */
export interface HeadContents {
  keys: Float32Array | Uint16Array;
  values: Float32Array | Uint16Array;
  logSizes: Float32Array;
  positions: Float64Array | Int32Array;
  /** required when `length` differs from the head's current length; otherwise the current origins are kept */
  origins?: Int32Array;
  length: number;
}

export interface KVCacheOptions {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  dtype: KVDtype;
  /** entries allocated per head up front (default 256); buffers double when full */
  initialCapacity?: number;
}

export interface CacheBytes {
  /** live entries: K + V in the storage dtype, plus logSizes (4 B) and positions (8 B) */
  current: number;
  /** what an uncompressed cache of the same layout would hold for every token appended */
  full: number;
  /** the per-entry origins (4 B each) kept so that compression can be repeated and tails rolled back */
  bookkeeping: number;
}

const DEFAULT_INITIAL_CAPACITY = 256;

function checkPositiveInteger(name: string, value: unknown, max = 1 << 20): number {
  if (!isIntegerIn(value, 1, max)) {
    throw new RangeError(`${name}: expected an integer in [1, ${max}], got ${String(value)}`);
  }
  return value;
}

/**
 * KV cache for one sequence: per layer × KV head growable buffers of keys, values, ln(size), original positions
 * and origins. Entries of a head are kept in origin order; appends go to the end.
 */
export class KVCache {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly dtype: KVDtype;

  private keyBuffers: (Float32Array | Uint16Array)[] = [];
  private valueBuffers: (Float32Array | Uint16Array)[] = [];
  private logSizeBuffers: Float32Array[] = [];
  private positionBuffers: Float64Array[] = [];
  private originBuffers: Int32Array[] = [];
  private lengths: Int32Array;
  private capacities: Int32Array;
  /** per head: tokens before this ordinal may sit inside cores, so rollback cannot go below it */
  private sealedTokens: Int32Array;
  /** per layer: tokens appended so far */
  private appended: Int32Array;
  private viewCache: (HeadView[] | undefined)[];

  constructor(options: KVCacheOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('options: expected an object');
    this.numLayers = checkPositiveInteger('numLayers', options.numLayers, 4096);
    this.numKvHeads = checkPositiveInteger('numKvHeads', options.numKvHeads, 4096);
    this.headDim = checkPositiveInteger('headDim', options.headDim, 65536);
    if (options.dtype !== 'float32' && options.dtype !== 'float16') {
      throw new TypeError(`dtype: expected 'float32' or 'float16', got ${String(options.dtype)}`);
    }
    this.dtype = options.dtype;
    const initial = checkPositiveInteger(
      'initialCapacity',
      options.initialCapacity ?? DEFAULT_INITIAL_CAPACITY,
      1 << 24,
    );
    const slots = this.numLayers * this.numKvHeads;
    this.lengths = new Int32Array(slots);
    this.capacities = new Int32Array(slots);
    this.sealedTokens = new Int32Array(slots);
    this.appended = new Int32Array(this.numLayers);
    this.viewCache = new Array(this.numLayers).fill(undefined);
    for (let s = 0; s < slots; s++) this.allocate(s, initial);
  }

  /** Bytes per stored key or value element. */
  get elementBytes(): number {
    return this.dtype === 'float16' ? 2 : 4;
  }

  /** Tokens appended to the layer that has seen the most (all layers agree between forward passes). */
  get tokensSeen(): number {
    let max = 0;
    for (let l = 0; l < this.numLayers; l++) max = Math.max(max, this.appended[l]);
    return max;
  }

  appendedTokens(layer: number): number {
    this.checkLayer(layer);
    return this.appended[layer];
  }

  length(layer: number, head: number): number {
    return this.lengths[this.slot(layer, head)];
  }

  /**
   * Appends m tokens to a layer. keys/values are m × numKvHeads × headDim, token-major, fp32, as the projection
   * produces them; positions holds each token's original position.
   */
  append(layer: number, keys: Float32Array, values: Float32Array, positions: Int32Array | Float64Array): void {
    this.checkLayer(layer);
    if (!(positions instanceof Int32Array) && !(positions instanceof Float64Array)) {
      throw new TypeError('positions: expected an Int32Array or Float64Array');
    }
    const m = positions.length;
    const H = this.numKvHeads;
    const d = this.headDim;
    checkTokenMajor('keys', keys, m, H, d);
    checkTokenMajor('values', values, m, H, d);
    for (let t = 0; t < m; t++) {
      if (!Number.isFinite(positions[t])) throw new RangeError(`positions: non-finite value at index ${t}`);
    }
    if (m === 0) return;
    const firstOrigin = this.appended[layer];
    if (firstOrigin + m > 0x7fffffff) throw new RangeError('append: more than 2^31 - 1 tokens in one cache');
    for (let h = 0; h < H; h++) {
      const s = layer * H + h;
      const start = this.lengths[s];
      this.ensureCapacity(s, start + m);
      const kd = this.keyBuffers[s];
      const vd = this.valueBuffers[s];
      const logSizes = this.logSizeBuffers[s];
      const pos = this.positionBuffers[s];
      const origins = this.originBuffers[s];
      for (let t = 0; t < m; t++) {
        const src = (t * H + h) * d;
        const dst = (start + t) * d;
        const kRow = keys.subarray(src, src + d);
        const vRow = values.subarray(src, src + d);
        if (kd instanceof Float32Array) {
          kd.set(kRow, dst);
          (vd as Float32Array).set(vRow, dst);
        } else {
          float32ArrayToFloat16Bits(kRow, kd.subarray(dst, dst + d));
          float32ArrayToFloat16Bits(vRow, (vd as Uint16Array).subarray(dst, dst + d));
        }
        logSizes[start + t] = 0;
        pos[start + t] = positions[t];
        origins[start + t] = firstOrigin + t;
      }
      this.lengths[s] = start + m;
    }
    this.appended[layer] = firstOrigin + m;
    this.viewCache[layer] = undefined;
  }

  /** Zero-copy views of a layer's heads; valid until the next append, replace, truncate or shrink of the layer. */
  heads(layer: number): HeadView[] {
    this.checkLayer(layer);
    const cached = this.viewCache[layer];
    if (cached) return cached;
    const views: HeadView[] = [];
    for (let h = 0; h < this.numKvHeads; h++) views.push(this.makeView(layer * this.numKvHeads + h));
    this.viewCache[layer] = views;
    return views;
  }

  head(layer: number, head: number): HeadView {
    return this.heads(layer)[this.slot(layer, head) - layer * this.numKvHeads];
  }

  /** A head's keys (or values) as fp32: a copy, decoded from fp16 when needed. */
  readFloat32(layer: number, head: number, which: 'keys' | 'values'): Float32Array {
    const s = this.slot(layer, head);
    const n = this.lengths[s] * this.headDim;
    const src = (which === 'keys' ? this.keyBuffers : this.valueBuffers)[s].subarray(0, n);
    return src instanceof Float32Array ? src.slice() : float16BitsToFloat32Array(src);
  }

  /**
   * Replaces a head's entries [from, to) with `contents.length` new ones, moving the later entries; in place, without
   * reallocating unless the head grows past its capacity. The inputs are copied (they may not alias the head's
   * storage) and validated like `replace`; `contents.origins` is required.
   */
  splice(layer: number, head: number, from: number, to: number, contents: HeadContents): void {
    const s = this.slot(layer, head);
    const current = this.lengths[s];
    if (!isIntegerIn(from, 0, current) || !isIntegerIn(to, from, current)) {
      throw new RangeError(`from, to: expected 0 ≤ from ≤ to ≤ ${current}, got ${String(from)}, ${String(to)}`);
    }
    const { length, origins } = this.checkContents(layer, contents);
    if (origins === undefined) throw new TypeError('contents.origins: required by splice');
    for (const [name, array] of [
      ['contents.keys', contents.keys],
      ['contents.values', contents.values],
    ] as const) {
      if (array.buffer === this.keyBuffers[s].buffer || array.buffer === this.valueBuffers[s].buffer) {
        throw new TypeError(`${name}: must not share memory with the head's storage`);
      }
    }
    const d = this.headDim;
    const total = current - (to - from) + length;
    this.ensureCapacity(s, total);
    const moveTail = <T extends Float32Array | Uint16Array | Float64Array | Int32Array>(array: T, width: number) => {
      array.copyWithin((from + length) * width, to * width, current * width);
    };
    moveTail(this.keyBuffers[s], d);
    moveTail(this.valueBuffers[s], d);
    moveTail(this.logSizeBuffers[s], 1);
    moveTail(this.positionBuffers[s], 1);
    moveTail(this.originBuffers[s], 1);
    this.writeStorage(this.keyBuffers[s].subarray(from * d), contents.keys, length * d);
    this.writeStorage(this.valueBuffers[s].subarray(from * d), contents.values, length * d);
    this.logSizeBuffers[s].set(contents.logSizes.subarray(0, length), from);
    this.positionBuffers[s].set(contents.positions.subarray(0, length), from);
    this.originBuffers[s].set(origins.subarray(0, length), from);
    this.lengths[s] = total;
    this.sealedTokens[s] = this.appended[layer];
    this.viewCache[layer] = undefined;
  }

  /** Replaces a head's contents (typically with compressed entries). The inputs are copied. */
  replace(layer: number, head: number, contents: HeadContents): void {
    const s = this.slot(layer, head);
    const checked = this.checkContents(layer, contents);
    const { length } = checked;
    let origins = checked.origins;
    if (origins === undefined) {
      if (length !== this.lengths[s]) {
        throw new TypeError('contents.origins: required when the number of entries changes');
      }
      origins = this.originBuffers[s].slice(0, length);
    }
    const d = this.headDim;
    const positions = contents.positions;
    this.ensureCapacity(s, length);
    this.writeStorage(this.keyBuffers[s], contents.keys, length * d);
    this.writeStorage(this.valueBuffers[s], contents.values, length * d);
    this.logSizeBuffers[s].set(contents.logSizes.subarray(0, length));
    this.positionBuffers[s].set(positions.subarray(0, length));
    this.originBuffers[s].set(origins.subarray(0, length));
    this.lengths[s] = length;
    this.sealedTokens[s] = this.appended[layer];
    this.viewCache[layer] = undefined;
  }

  /**
   * Rolls every layer back to its first `tokens` appended tokens (e.g. to drop a question after answering it).
   * Only raw entries appended after the last replace of a head can be removed; anything else is a RangeError and
   * leaves the cache unchanged.
   */
  truncate(tokens: number): void {
    if (!isIntegerIn(tokens, 0, Number.POSITIVE_INFINITY)) {
      throw new RangeError(`tokens: expected a non-negative integer, got ${String(tokens)}`);
    }
    const H = this.numKvHeads;
    for (let s = 0; s < this.lengths.length; s++) {
      const layer = Math.floor(s / H);
      if (this.appended[layer] > tokens && tokens < this.sealedTokens[s]) {
        throw new RangeError(
          `tokens: layer ${layer} head ${s % H} was compressed over its first ${this.sealedTokens[s]} tokens; ` +
            `cannot roll back to ${tokens}`,
        );
      }
    }
    for (let s = 0; s < this.lengths.length; s++) {
      const origins = this.originBuffers[s];
      let n = this.lengths[s];
      while (n > 0 && origins[n - 1] >= tokens) n--;
      this.lengths[s] = n;
    }
    for (let l = 0; l < this.numLayers; l++) {
      if (this.appended[l] > tokens) {
        this.appended[l] = tokens;
        this.viewCache[l] = undefined;
      }
    }
  }

  bytes(): CacheBytes {
    const perEntry = this.entryBytes();
    let entries = 0;
    for (let s = 0; s < this.lengths.length; s++) entries += this.lengths[s];
    let tokens = 0;
    for (let l = 0; l < this.numLayers; l++) tokens += this.appended[l];
    return { current: entries * perEntry, full: tokens * this.numKvHeads * perEntry, bookkeeping: entries * 4 };
  }

  /** Bytes allocated by all buffers, spare capacity included. */
  get capacityBytes(): number {
    let capacity = 0;
    for (let s = 0; s < this.capacities.length; s++) capacity += this.capacities[s];
    return capacity * (this.entryBytes() + 4);
  }

  /** Reallocates every head to its length plus `headroom` entries, releasing what compression freed. */
  shrinkToFit(headroom = 0): void {
    if (!isIntegerIn(headroom, 0, Number.POSITIVE_INFINITY)) {
      throw new RangeError(`headroom: expected a non-negative integer, got ${String(headroom)}`);
    }
    for (let s = 0; s < this.lengths.length; s++) this.reallocate(s, Math.max(1, this.lengths[s] + headroom));
    this.viewCache.fill(undefined);
  }

  /** Serializes the whole cache: versioned header, payload, CRC-32. */
  snapshot(): Uint8Array {
    return encodeSnapshot(this.state());
  }

  /** Builds a new cache from a snapshot; throws SnapshotError for truncated, corrupted or unknown data. */
  static restore(bytes: Uint8Array): KVCache {
    const state = decodeSnapshot(bytes);
    const cache = new KVCache({ ...state.config, initialCapacity: 1 });
    cache.adopt(state);
    return cache;
  }

  /** An independent copy of the live entries, without serializing: what `restore(snapshot())` gives, faster. */
  clone(): KVCache {
    const state = this.state();
    const copy = new KVCache({ ...state.config, initialCapacity: 1 });
    copy.adopt({
      config: state.config,
      appended: state.appended.slice(),
      heads: state.heads.map((h) => ({
        ...h,
        keys: h.keys.slice(),
        values: h.values.slice(),
        logSizes: h.logSizes.slice(),
        positions: h.positions.slice(),
        origins: h.origins.slice(),
      })),
    });
    return copy;
  }

  /**
   * Replaces this cache's contents with a snapshot of the same shape. The snapshot is fully decoded and checked
   * first, so a bad one throws SnapshotError and leaves this cache as it was.
   */
  restoreFrom(bytes: Uint8Array): void {
    const state = decodeSnapshot(bytes);
    const c = state.config;
    if (
      c.numLayers !== this.numLayers ||
      c.numKvHeads !== this.numKvHeads ||
      c.headDim !== this.headDim ||
      c.dtype !== this.dtype
    ) {
      throw new SnapshotError(
        'shape-mismatch',
        `snapshot holds ${c.numLayers} layers × ${c.numKvHeads} KV heads × ${c.headDim} dims (${c.dtype}), ` +
          `this cache ${this.numLayers} × ${this.numKvHeads} × ${this.headDim} (${this.dtype})`,
      );
    }
    this.adopt(state);
  }

  private state(): SnapshotState {
    const heads = [];
    for (let s = 0; s < this.lengths.length; s++) {
      const n = this.lengths[s];
      const d = this.headDim;
      heads.push({
        keys: this.keyBuffers[s].subarray(0, n * d),
        values: this.valueBuffers[s].subarray(0, n * d),
        logSizes: this.logSizeBuffers[s].subarray(0, n),
        positions: this.positionBuffers[s].subarray(0, n),
        origins: this.originBuffers[s].subarray(0, n),
        length: n,
        sealedTokens: this.sealedTokens[s],
      });
    }
    const { numLayers, numKvHeads, headDim, dtype } = this;
    return { config: { numLayers, numKvHeads, headDim, dtype }, appended: this.appended, heads };
  }

  /** Takes over decoded snapshot arrays (already validated and owned by nobody else). */
  private adopt(state: SnapshotState): void {
    for (let s = 0; s < this.lengths.length; s++) {
      const h = state.heads[s];
      this.keyBuffers[s] = h.keys;
      this.valueBuffers[s] = h.values;
      this.logSizeBuffers[s] = h.logSizes;
      this.positionBuffers[s] = h.positions;
      this.originBuffers[s] = h.origins;
      this.lengths[s] = h.length;
      this.capacities[s] = h.logSizes.length;
      this.sealedTokens[s] = h.sealedTokens;
      if (h.logSizes.length === 0) this.allocate(s, 1);
    }
    this.appended.set(state.appended);
    this.viewCache.fill(undefined);
  }

  private entryBytes(): number {
    return 2 * this.headDim * this.elementBytes + 4 + 8;
  }

  private makeView(s: number): HeadView {
    const n = this.lengths[s];
    const d = this.headDim;
    return {
      keys: this.keyBuffers[s].subarray(0, n * d),
      values: this.valueBuffers[s].subarray(0, n * d),
      logSizes: this.logSizeBuffers[s].subarray(0, n),
      positions: this.positionBuffers[s].subarray(0, n),
      origins: this.originBuffers[s].subarray(0, n),
      length: n,
    };
  }

  private checkLayer(layer: number): void {
    if (!isIntegerIn(layer, 0, this.numLayers - 1)) {
      throw new RangeError(`layer: expected an integer in [0, ${this.numLayers - 1}], got ${String(layer)}`);
    }
  }

  private slot(layer: number, head: number): number {
    this.checkLayer(layer);
    if (!isIntegerIn(head, 0, this.numKvHeads - 1)) {
      throw new RangeError(`head: expected an integer in [0, ${this.numKvHeads - 1}], got ${String(head)}`);
    }
    return layer * this.numKvHeads + head;
  }

  /** Validates replacement contents (shapes, dtypes, finiteness, origins within the appended tokens). */
  private checkContents(layer: number, contents: HeadContents): { length: number; origins: Int32Array | undefined } {
    if (contents === null || typeof contents !== 'object') throw new TypeError('contents: expected an object');
    const { length } = contents;
    if (!isIntegerIn(length, 0, Number.POSITIVE_INFINITY)) {
      throw new RangeError(`contents.length: expected a non-negative integer, got ${String(length)}`);
    }
    const d = this.headDim;
    this.checkStorageArray('contents.keys', contents.keys, length * d);
    this.checkStorageArray('contents.values', contents.values, length * d);
    if (!(contents.logSizes instanceof Float32Array) || contents.logSizes.length < length) {
      throw new TypeError(`contents.logSizes: expected a Float32Array of at least ${length} entries`);
    }
    const positions = contents.positions;
    if (!(positions instanceof Float64Array || positions instanceof Int32Array) || positions.length < length) {
      throw new TypeError(`contents.positions: expected a Float64Array or Int32Array of at least ${length} entries`);
    }
    const origins = contents.origins;
    if (origins !== undefined && (!(origins instanceof Int32Array) || origins.length < length)) {
      throw new TypeError(`contents.origins: expected an Int32Array of at least ${length} entries`);
    }
    const appended = this.appended[layer];
    for (let i = 0; i < length; i++) {
      if (!Number.isFinite(contents.logSizes[i])) throw new RangeError(`contents.logSizes: non-finite at ${i}`);
      if (!Number.isFinite(positions[i])) throw new RangeError(`contents.positions: non-finite at ${i}`);
      if (origins !== undefined && (origins[i] < 0 || origins[i] >= appended)) {
        throw new RangeError(`contents.origins: ${origins[i]} at ${i} is outside the ${appended} appended tokens`);
      }
    }
    return { length, origins };
  }

  private checkStorageArray(name: string, array: unknown, minLength: number): void {
    if (array instanceof Float32Array || (array instanceof Uint16Array && this.dtype === 'float16')) {
      if (array.length < minLength) throw new RangeError(`${name}: expected at least ${minLength} elements`);
      if (array instanceof Float32Array) {
        for (let i = 0; i < minLength; i++) {
          if (!Number.isFinite(array[i])) throw new RangeError(`${name}: non-finite value at index ${i}`);
        }
      }
      return;
    }
    throw new TypeError(
      `${name}: expected a Float32Array${this.dtype === 'float16' ? ' or Uint16Array (fp16 bits)' : ''}`,
    );
  }

  private writeStorage(dst: Float32Array | Uint16Array, src: Float32Array | Uint16Array, n: number): void {
    if (dst instanceof Float32Array) dst.set(src.subarray(0, n) as Float32Array);
    else if (src instanceof Uint16Array) dst.set(src.subarray(0, n));
    else float32ArrayToFloat16Bits(src.subarray(0, n), dst);
  }

  private allocate(s: number, capacity: number): void {
    const d = this.headDim;
    const Storage = this.dtype === 'float16' ? Uint16Array : Float32Array;
    this.keyBuffers[s] = new Storage(capacity * d);
    this.valueBuffers[s] = new Storage(capacity * d);
    this.logSizeBuffers[s] = new Float32Array(capacity);
    this.positionBuffers[s] = new Float64Array(capacity);
    this.originBuffers[s] = new Int32Array(capacity);
    this.capacities[s] = capacity;
  }

  private ensureCapacity(s: number, needed: number): void {
    if (needed > this.capacities[s]) this.reallocate(s, Math.max(needed, this.capacities[s] * 2));
  }

  private reallocate(s: number, capacity: number): void {
    const n = this.lengths[s];
    const d = this.headDim;
    const keys = this.keyBuffers[s];
    const values = this.valueBuffers[s];
    const logSizes = this.logSizeBuffers[s];
    const positions = this.positionBuffers[s];
    const origins = this.originBuffers[s];
    this.allocate(s, capacity);
    (this.keyBuffers[s] as Float32Array).set(keys.subarray(0, n * d) as Float32Array);
    (this.valueBuffers[s] as Float32Array).set(values.subarray(0, n * d) as Float32Array);
    this.logSizeBuffers[s].set(logSizes.subarray(0, n));
    this.positionBuffers[s].set(positions.subarray(0, n));
    this.originBuffers[s].set(origins.subarray(0, n));
  }
}

function checkTokenMajor(name: string, array: unknown, m: number, H: number, d: number): void {
  if (!(array instanceof Float32Array))
    throw new TypeError(`${name}: expected a Float32Array (m × numKvHeads × headDim)`);
  if (array.length !== m * H * d) {
    throw new RangeError(
      `${name}: expected ${m} × ${H} × ${d} = ${m * H * d} elements (m = positions.length), got ${array.length}`,
    );
  }
  for (let i = 0; i < array.length; i++) {
    if (!Number.isFinite(array[i])) throw new RangeError(`${name}: non-finite value at index ${i}`);
  }
}
