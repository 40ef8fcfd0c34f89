import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { float16BitsToFloat32Array } from '@semanticache/kv-cache';
import { ModelLoadError } from './errors.js';

const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  U64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);
/** F16 / BF16 tensors are read in pieces of this many bytes (the scratch buffer's size). */
const CHUNK_BYTES = 8 * 1024 * 1024;
// A header is JSON of a few hundred bytes per tensor; anything near this size is a corrupt length field.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** How a tensor's values are stored: fp32, or the bits of fp16 / bf16 values. */
export type StoredFloat = { dtype: 'F32'; data: Float32Array } | { dtype: 'F16' | 'BF16'; data: Uint16Array };

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** Byte range inside the data section (after the 8-byte length and the header). */
  begin: number;
  end: number;
}

/**
 * A safetensors file read one tensor at a time with `readSync`, so files over 2 GiB work and only the tensors asked
 * for are read. The header is validated up front: length, JSON, dtypes, shapes × dtype size == byte range, ranges
 * inside the file.
 */
export class SafetensorsFile {
  readonly path: string;
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string> | undefined;
  private fd: number;
  private dataStart: number;
  private scratch: Uint16Array | undefined;

  constructor(path: string) {
    this.path = path;
    try {
      this.fd = openSync(path, 'r');
    } catch (cause) {
      throw new ModelLoadError('cannot open safetensors file', { file: path, cause });
    }
    try {
      const size = fstatSync(this.fd).size;
      if (size < 8)
        throw new ModelLoadError(`file is ${size} bytes, too short for a safetensors header`, { file: path });
      const lenBuf = Buffer.alloc(8);
      readSync(this.fd, lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
        throw new ModelLoadError(`invalid header length ${headerLen} for a file of ${size} bytes`, { file: path });
      }
      const headerBuf = Buffer.alloc(headerLen);
      readSync(this.fd, headerBuf, 0, headerLen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(headerBuf.toString('utf8'));
      } catch (cause) {
        throw new ModelLoadError('header is not valid JSON', { file: path, cause });
      }
      if (header === null || typeof header !== 'object' || Array.isArray(header)) {
        throw new ModelLoadError('header is not a JSON object', { file: path });
      }
      this.dataStart = 8 + headerLen;
      const dataBytes = size - this.dataStart;
      this.tensors = new Map();
      for (const [name, raw] of Object.entries(header)) {
        if (name === '__metadata__') continue;
        this.tensors.set(name, validateEntry(path, name, raw, dataBytes));
      }
      this.metadata = header.__metadata__ as Record<string, string> | undefined;
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** Reads a float tensor (F32, F16 or BF16) as float32. */
  readFloat32(name: string): { data: Float32Array; shape: number[] } {
    const info = this.floatInfo(name);
    const data = new Float32Array(info.shape.reduce((a, b) => a * b, 1));
    this.readFloat32Into(name, data);
    return { data, shape: info.shape };
  }

  /**
   * Reads a float tensor (F32, F16 or BF16) widened to fp32 into `dst` (exactly its element count). F16 and BF16
   * pass through one scratch buffer reused across calls, so no copy of the stored bytes outlives the call. Returns
   * the index of the first non-finite element, or -1: the check rides along the widening pass.
   */
  readFloat32Into(name: string, dst: Float32Array): number {
    const info = this.floatInfo(name);
    const count = (info.end - info.begin) / DTYPE_BYTES[info.dtype];
    if (dst.length !== count) throw new RangeError(`dst: ${dst.length} elements for a tensor of ${count}`);
    const start = this.dataStart + info.begin;
    if (info.dtype === 'F32') {
      this.readBytes(name, new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength), start);
      return firstNonFinite(dst);
    }
    const chunk = CHUNK_BYTES / 2;
    this.scratch ??= new Uint16Array(chunk);
    let invalid = false;
    for (let at = 0; at < count; at += chunk) {
      const n = Math.min(chunk, count - at);
      const src = this.scratch.subarray(0, n);
      this.readBytes(name, new Uint8Array(src.buffer, 0, 2 * n), start + 2 * at);
      const out = dst.subarray(at, at + n);
      if (info.dtype === 'F16') float16BitsToFloat32Array(src, out);
      else if (!bf16ToFloat32(src, out)) invalid = true;
    }
    return info.dtype === 'F16' || invalid ? firstNonFinite(dst) : -1;
  }

  /**
   * Reads a float tensor as it is stored (fp32, or fp16 / bf16 bits) with the index of its first non-finite element,
   * or -1.
   */
  readStored(name: string): { stored: StoredFloat; firstNonFinite: number } {
    const info = this.floatInfo(name);
    const count = (info.end - info.begin) / DTYPE_BYTES[info.dtype];
    if (info.dtype === 'F32') {
      const data = new Float32Array(count);
      this.readBytes(name, new Uint8Array(data.buffer), this.dataStart + info.begin);
      return { stored: { dtype: 'F32', data }, firstNonFinite: firstNonFinite(data) };
    }
    const data = new Uint16Array(count);
    this.readBytes(name, new Uint8Array(data.buffer), this.dataStart + info.begin);
    // exponent all ones: fp16 bits 10–14, bf16 bits 7–14
    const exponent = info.dtype === 'F16' ? 0x7c00 : 0x7f80;
    let bad = -1;
    for (let i = 0; i < count; i++) {
      if ((data[i] & exponent) === exponent) {
        bad = i;
        break;
      }
    }
    return { stored: { dtype: info.dtype as 'F16' | 'BF16', data }, firstNonFinite: bad };
  }

  private floatInfo(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new ModelLoadError('tensor not found', { file: this.path, tensor: name });
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new ModelLoadError(`unsupported dtype ${info.dtype} (expected F32, F16 or BF16)`, {
        file: this.path,
        tensor: name,
      });
    }
    return info;
  }

  private readBytes(name: string, view: Uint8Array, position: number): void {
    let done = 0;
    while (done < view.length) {
      // readSync moves at most ~2 GiB per call
      const n = readSync(this.fd, view, done, Math.min(view.length - done, 1 << 30), position + done);
      if (n <= 0) throw new ModelLoadError('unexpected end of file', { file: this.path, tensor: name });
      done += n;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.scratch = undefined;
  }
}

function validateEntry(file: string, name: string, raw: unknown, dataBytes: number): TensorInfo {
  const fail = (msg: string) => new ModelLoadError(msg, { file, tensor: name });
  if (raw === null || typeof raw !== 'object') throw fail('header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) throw fail(`unknown dtype ${String(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw fail(`invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataBytes) throw fail(`data_offsets [${begin}, ${end}] run past the end of the data (${dataBytes} bytes)`);
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  if (elements * DTYPE_BYTES[dtype] !== end - begin) {
    throw fail(
      `shape ${JSON.stringify(shape)} × ${dtype} needs ${elements * DTYPE_BYTES[dtype]} bytes, got ${end - begin}`,
    );
  }
  return { dtype, shape: shape as number[], begin, end };
}

/**
 * bf16 is the top half of an fp32: widening is a shift. Returns false if some value is non-finite (exponent all ones:
 * adding 0x80 to it carries into bit 15), tracked without a branch.
 */
export function bf16ToFloat32(src: Uint16Array, dst: Float32Array): boolean {
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  let carry = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i];
    bits[i] = b << 16;
    carry |= (b & 0x7f80) + 0x80;
  }
  return (carry & 0x8000) === 0;
}

/** Index of the first NaN or ±Infinity in `data`, or -1. */
function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}
