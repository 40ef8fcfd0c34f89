/**
 * Native decode and causal block-prefill attention over a ragged per-head KV cache with an additive ln(size) bias
 * per key (proportional attention: a core of size s weighs like s identical keys). GQA, fp32/fp16 cache storage,
 * a small native thread pool, sync and async forms.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon } from './load-addon.js';
import type { DecodeArgs, HeadCache, PrefillArgs } from './types.js';

export {
  float16BitsToFloat32,
  float16BitsToFloat32Array,
  float32ArrayToFloat16Bits,
  float32ToFloat16Bits,
  type ReferenceArgs,
  referenceAttention,
} from './reference.js';
export type { DecodeArgs, HeadCache, PrefillArgs } from './types.js';

export type SimdLevel = 'avx512' | 'avx2' | 'scalar';

interface NativeAddon {
  attention(
    q: Float32Array,
    heads: HeadCache[],
    numHeads: number,
    headDim: number,
    blockLength: number,
    scale: number,
    out: Float32Array,
    attentionMass?: Float32Array[],
  ): void;
  attentionAsync(
    q: Float32Array,
    heads: HeadCache[],
    numHeads: number,
    headDim: number,
    blockLength: number,
    scale: number,
    out: Float32Array,
    attentionMass?: Float32Array[],
  ): Promise<Float32Array>;
  setThreads(n: number): void;
  getThreads(): number;
  simdLevel(): SimdLevel;
  setSimdLevel(level: 'auto' | SimdLevel): SimdLevel;
  supportsAvx2(): boolean;
  supportsAvx512(): boolean;
  bandwidthProbe(megabytes: number, repeats: number): { readGBps: number; copyGBps: number; threads: number };
}

let loaded: NativeAddon | undefined;

/**
 * The addon, loaded on the first call that needs it: importing the package never fails, so a consumer can fall back
 * to the reference (`@semanticache/proportional-attention/reference`) when the binary is missing.
 */
function native(): NativeAddon {
  if (loaded === undefined) {
    // The package root holds binding.gyp, build/ and prebuilds/; this file sits one level below it in src/ and dist/.
    const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    const requireFromHere = createRequire(import.meta.url);
    loaded = loadNativeAddon<NativeAddon>(packageRoot, requireFromHere('node-gyp-build'), requireFromHere);
  }
  return loaded;
}

const MAX_INDEX = 2 ** 31 - 1;

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (Array.isArray(value)) return 'Array';
  return typeof value;
}

function isFloat32(value: unknown): value is Float32Array {
  return value instanceof Float32Array;
}

function checkInteger(value: unknown, name: string, min: number, max = MAX_INDEX): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeName(value)}`);
  if (!Number.isInteger(value)) throw new RangeError(`${name} must be an integer, got ${value}`);
  if (value < min || value > max) throw new RangeError(`${name} must be in [${min}, ${max}], got ${value}`);
  return value;
}

interface Checked {
  numHeads: number;
  headDim: number;
  blockLength: number;
  scale: number;
  out: Float32Array;
  attentionMass: Float32Array[] | undefined;
}

function checkArgs(args: PrefillArgs, fn: string): Checked {
  if (args === null || typeof args !== 'object') throw new TypeError(`${fn}: arguments must be an object`);
  const numHeads = checkInteger(args.numHeads, 'numHeads', 1, 65536);
  const headDim = checkInteger(args.headDim, 'headDim', 1, 65536);
  const blockLength = checkInteger(args.blockLength, 'blockLength', 1);
  const scale = args.scale === undefined ? 1 / Math.sqrt(headDim) : args.scale;
  if (typeof scale !== 'number') throw new TypeError(`scale must be a number, got ${typeName(scale)}`);
  if (!Number.isFinite(scale) || !Number.isFinite(Math.fround(scale)))
    throw new RangeError(`scale must be a finite float32, got ${scale}`);

  const { heads, q } = args;
  if (!Array.isArray(heads)) throw new TypeError(`heads must be an array of HeadCache, got ${typeName(heads)}`);
  const numKvHeads = heads.length;
  if (numKvHeads < 1 || numKvHeads > numHeads || numHeads % numKvHeads !== 0)
    throw new RangeError(`heads.length (${numKvHeads}) must be ≥ 1 and divide numHeads (${numHeads})`);
  const vectorFloats = blockLength * numHeads * headDim;
  if (!isFloat32(q)) throw new TypeError(`q must be a Float32Array, got ${typeName(q)}`);
  if (q.length !== vectorFloats)
    throw new RangeError(
      `q.length must be ${blockLength > 1 ? 'blockLength × ' : ''}numHeads × headDim = ${vectorFloats}, got ${q.length}`,
    );

  let dtype: 'Float32Array' | 'Uint16Array' | undefined;
  for (let g = 0; g < numKvHeads; g++) {
    const head = heads[g];
    const name = `heads[${g}]`;
    if (head === null || typeof head !== 'object')
      throw new TypeError(`${name} must be a HeadCache { keys, values, logSizes, length }, got ${typeName(head)}`);
    const length = checkInteger(head.length, `${name}.length`, 0);
    const { keys, values, logSizes } = head;
    const keyType = keys instanceof Float32Array ? 'Float32Array' : keys instanceof Uint16Array ? 'Uint16Array' : null;
    if (keyType === null)
      throw new TypeError(`${name}.keys must be a Float32Array or a Uint16Array of fp16 bits, got ${typeName(keys)}`);
    dtype ??= keyType;
    if (keyType !== dtype)
      throw new TypeError(`${name}.keys is a ${keyType} but heads[0].keys is a ${dtype}: one dtype per call`);
    if (!(values instanceof (keyType === 'Float32Array' ? Float32Array : Uint16Array)))
      throw new TypeError(`${name}.values must be a ${keyType} like its keys, got ${typeName(values)}`);
    if (!isFloat32(logSizes)) throw new TypeError(`${name}.logSizes must be a Float32Array, got ${typeName(logSizes)}`);
    const need = length * headDim;
    if (keys.length < need)
      throw new RangeError(`${name}.keys holds ${keys.length} elements, length × headDim needs ${need}`);
    if (values.length < need)
      throw new RangeError(`${name}.values holds ${values.length} elements, length × headDim needs ${need}`);
    if (logSizes.length < length)
      throw new RangeError(`${name}.logSizes holds ${logSizes.length} elements, length needs ${length}`);
    if (length < blockLength)
      throw new RangeError(
        blockLength === 1
          ? `${name}.length must be at least 1 (the new token is appended before decode)`
          : `${name}.length (${length}) must be at least blockLength (${blockLength})`,
      );
  }

  const out = args.out === undefined ? new Float32Array(vectorFloats) : args.out;
  if (!isFloat32(out)) throw new TypeError(`out must be a Float32Array, got ${typeName(out)}`);
  if (out.length !== vectorFloats) throw new RangeError(`out.length must be ${vectorFloats}, got ${out.length}`);

  const { attentionMass } = args;
  if (attentionMass !== undefined) {
    if (!Array.isArray(attentionMass))
      throw new TypeError(`attentionMass must be an array of Float32Array, got ${typeName(attentionMass)}`);
    if (attentionMass.length !== numKvHeads)
      throw new RangeError(`attentionMass.length must equal heads.length (${numKvHeads}), got ${attentionMass.length}`);
    for (let g = 0; g < numKvHeads; g++) {
      const mass = attentionMass[g];
      if (!isFloat32(mass)) throw new TypeError(`attentionMass[${g}] must be a Float32Array, got ${typeName(mass)}`);
      if (mass.length < heads[g].length)
        throw new RangeError(`attentionMass[${g}].length must be at least heads[${g}].length (${heads[g].length})`);
    }
  }
  return { numHeads, headDim, blockLength, scale, out, attentionMass };
}

function withBlock(args: DecodeArgs): PrefillArgs {
  if (args === null || typeof args !== 'object') throw new TypeError('decode: arguments must be an object');
  if ('blockLength' in args && (args as PrefillArgs).blockLength !== 1)
    throw new RangeError('decode takes no blockLength: use prefill for a block of tokens');
  return { ...args, blockLength: 1 };
}

/** Attention of one new token (q: H × d) over the cache. Returns out (H × d). */
export function decode(args: DecodeArgs): Float32Array {
  return prefill(withBlock(args));
}

/** Causal attention of a block of m tokens (q: m × H × d), already appended to every head. Returns out. */
export function prefill(args: PrefillArgs): Float32Array {
  const c = checkArgs(args, 'prefill');
  native().attention(args.q, args.heads, c.numHeads, c.headDim, c.blockLength, c.scale, c.out, c.attentionMass);
  return c.out;
}

/**
 * decode on a libuv worker thread; the event loop stays free. The typed arrays are kept alive until it settles;
 * do not write to them, transfer or detach their buffers meanwhile.
 */
export function decodeAsync(args: DecodeArgs): Promise<Float32Array> {
  try {
    return prefillAsync(withBlock(args));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** prefill on a libuv worker thread (same caveats as decodeAsync). */
export function prefillAsync(args: PrefillArgs): Promise<Float32Array> {
  try {
    const c = checkArgs(args, 'prefillAsync');
    return native().attentionAsync(
      args.q,
      args.heads,
      c.numHeads,
      c.headDim,
      c.blockLength,
      c.scale,
      c.out,
      c.attentionMass,
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Size of the native pool (calling thread included). Default min(hardware threads, 2). */
export function setThreads(threads: number): void {
  native().setThreads(checkInteger(threads, 'threads', 1, 256));
}

export function getThreads(): number {
  return native().getThreads();
}

/**
 * Instruction set of the active kernels: 'avx512' (AVX-512 F/BW/VL), 'avx2' (AVX2 + FMA + F16C) or 'scalar'.
 */
export function simdLevel(): SimdLevel {
  return native().simdLevel();
}

/**
 * Use the best kernels up to a level: 'avx512' or 'avx2' (RangeError if the CPU lacks it), 'scalar' (the portable
 * loops), or 'auto' (the best this CPU runs). The env var SEMANTICACHE_ATTENTION_SIMD=avx2|scalar does the same at
 * load time.
 */
export function setSimdLevel(level: 'auto' | SimdLevel): SimdLevel {
  if (level !== 'auto' && level !== 'avx512' && level !== 'avx2' && level !== 'scalar')
    throw new RangeError(`level must be 'auto', 'avx512', 'avx2' or 'scalar', got ${String(level)}`);
  return native().setSimdLevel(level);
}

export function supportsAvx2(): boolean {
  return native().supportsAvx2();
}

export function supportsAvx512(): boolean {
  return native().supportsAvx512();
}

/**
 * Memory bandwidth of this machine, measured natively with the pool's threads: read (a vector sum, the access
 * pattern of decode) and copy (memcpy, bytes read + written), best of `repeats`, in GB/s.
 */
export function bandwidthProbe(options: { megabytes?: number; repeats?: number } = {}): {
  readGBps: number;
  copyGBps: number;
  threads: number;
} {
  const megabytes = checkInteger(options.megabytes ?? 256, 'megabytes', 1, 16384);
  const repeats = checkInteger(options.repeats ?? 5, 'repeats', 1, 1000);
  const { readGBps, copyGBps, threads } = native().bandwidthProbe(megabytes, repeats);
  return { readGBps, copyGBps, threads };
}
