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
// A header is JSON of a few hundred bytes per tensor; anything near this size is a corrupt length field.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

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
    const info = this.tensors.get(name);
    if (!info) throw new ModelLoadError('tensor not found', { file: this.path, tensor: name });
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new ModelLoadError(`unsupported dtype ${info.dtype} (expected F32, F16 or BF16)`, {
        file: this.path,
        tensor: name,
      });
    }
    const bytes = info.end - info.begin;
    const buf = new ArrayBuffer(bytes);
    const view = new Uint8Array(buf);
    let done = 0;
    while (done < bytes) {
      // readSync moves at most ~2 GiB per call
      const n = readSync(this.fd, view, done, Math.min(bytes - done, 1 << 30), this.dataStart + info.begin + done);
      if (n <= 0) throw new ModelLoadError('unexpected end of file', { file: this.path, tensor: name });
      done += n;
    }
    let data: Float32Array;
    if (info.dtype === 'F32') data = new Float32Array(buf);
    else if (info.dtype === 'F16') data = float16BitsToFloat32Array(new Uint16Array(buf));
    else data = bf16ToFloat32Array(new Uint16Array(buf));
    return { data, shape: info.shape };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
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

/** bf16 is the top half of an fp32: widening is a shift. */
function bf16ToFloat32Array(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return dst;
}
