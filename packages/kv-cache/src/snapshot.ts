import type { KVDtype } from '@semanticache/internal';
import { SnapshotError } from './errors.js';

// The storage dtype is coded 1 (float32) and 2 (float16).

// Layout (little-endian):
//   0  magic "SCKV"            4  u32 format version
//   8  u32 numLayers          12  u32 numKvHeads       16  u32 headDim      20  u32 dtype (1 = fp32, 2 = fp16)
//  24  u64 total bytes        32  u32 CRC-32 of bytes 0..31 (so a damaged size reads as damage, not truncation)
//  36  u32 tokens appended per layer × numLayers
//      u32 length, u32 sealed tokens per (layer, head), layer-major
//      payload per (layer, head): keys, values (length × headDim in the storage dtype), logSizes f32, positions f64,
//      origins i32
//      u32 CRC-32 (IEEE) of every byte before it
const MAGIC = 0x564b4353; // "SCKV" read as little-endian u32
export const SNAPSHOT_VERSION = 1;
const FIXED_HEADER = 36;

export interface SnapshotHead {
  keys: Float32Array | Uint16Array;
  values: Float32Array | Uint16Array;
  logSizes: Float32Array;
  positions: Float64Array;
  origins: Int32Array;
  length: number;
  sealedTokens: number;
}

export interface SnapshotState {
  config: { numLayers: number; numKvHeads: number; headDim: number; dtype: KVDtype };
  appended: Int32Array;
  heads: SnapshotHead[];
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndian(): void {
  if (!littleEndian)
    throw new SnapshotError('unsupported-platform', 'snapshots are read and written on little-endian hosts only');
}

function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export function encodeSnapshot(state: SnapshotState): Uint8Array {
  requireLittleEndian();
  const { numLayers, numKvHeads, headDim, dtype } = state.config;
  const slots = numLayers * numKvHeads;
  const headerBytes = FIXED_HEADER + 4 * numLayers + 8 * slots;
  let total = headerBytes + 4;
  for (const h of state.heads) {
    total += h.keys.byteLength + h.values.byteLength + h.logSizes.byteLength + h.positions.byteLength;
    total += h.origins.byteLength;
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, SNAPSHOT_VERSION, true);
  view.setUint32(8, numLayers, true);
  view.setUint32(12, numKvHeads, true);
  view.setUint32(16, headDim, true);
  view.setUint32(20, dtype === 'float32' ? 1 : 2, true);
  view.setBigUint64(24, BigInt(total), true);
  view.setUint32(32, crc32(out.subarray(0, 32)), true);
  let at = FIXED_HEADER;
  for (let l = 0; l < numLayers; l++, at += 4) view.setUint32(at, state.appended[l], true);
  for (const h of state.heads) {
    view.setUint32(at, h.length, true);
    view.setUint32(at + 4, h.sealedTokens, true);
    at += 8;
  }
  for (const h of state.heads) {
    for (const section of [h.keys, h.values, h.logSizes, h.positions, h.origins]) {
      out.set(bytesOf(section), at);
      at += section.byteLength;
    }
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

export function decodeSnapshot(bytes: Uint8Array): SnapshotState {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes: expected a Uint8Array');
  requireLittleEndian();
  if (bytes.length < 8) throw new SnapshotError('truncated', `${bytes.length} bytes is shorter than the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new SnapshotError('bad-magic', 'not a KV-cache snapshot');
  const version = view.getUint32(4, true);
  if (version !== SNAPSHOT_VERSION) {
    throw new SnapshotError('unsupported-version', `format version ${version}; this build reads ${SNAPSHOT_VERSION}`);
  }
  if (bytes.length < FIXED_HEADER) throw new SnapshotError('truncated', 'the header is cut short');
  const headerCrc = crc32(bytes.subarray(0, 32));
  if (view.getUint32(32, true) !== headerCrc) {
    throw new SnapshotError('checksum-mismatch', 'the header does not match its CRC-32');
  }
  const numLayers = view.getUint32(8, true);
  const numKvHeads = view.getUint32(12, true);
  const headDim = view.getUint32(16, true);
  const dtypeCode = view.getUint32(20, true);
  const total = Number(view.getBigUint64(24, true));
  if (numLayers < 1 || numLayers > 4096 || numKvHeads < 1 || numKvHeads > 4096 || headDim < 1 || headDim > 65536) {
    throw new SnapshotError('invalid-header', `implausible shape ${numLayers} × ${numKvHeads} × ${headDim}`);
  }
  if (dtypeCode !== 1 && dtypeCode !== 2) throw new SnapshotError('invalid-header', `unknown dtype code ${dtypeCode}`);
  if (bytes.length < total) throw new SnapshotError('truncated', `expected ${total} bytes, got ${bytes.length}`);
  if (bytes.length > total) throw new SnapshotError('trailing-bytes', `expected ${total} bytes, got ${bytes.length}`);
  const stored = view.getUint32(total - 4, true);
  const actual = crc32(bytes.subarray(0, total - 4));
  if (stored !== actual) {
    throw new SnapshotError('checksum-mismatch', `stored CRC-32 ${hex(stored)}, computed ${hex(actual)}`);
  }
  // Past the checksum the bytes are as written; the checks below guard against a writer that was not this one.
  const dtype: KVDtype = dtypeCode === 1 ? 'float32' : 'float16';
  const elementBytes = dtypeCode === 1 ? 4 : 2;
  const slots = numLayers * numKvHeads;
  const headerBytes = FIXED_HEADER + 4 * numLayers + 8 * slots;
  if (total < headerBytes + 4) throw new SnapshotError('invalid-header', 'the tables do not fit the stated size');
  const appended = new Int32Array(numLayers);
  let at = FIXED_HEADER;
  for (let l = 0; l < numLayers; l++, at += 4) {
    const tokens = view.getUint32(at, true);
    if (tokens > 0x7fffffff) throw new SnapshotError('invalid-header', `layer ${l}: ${tokens} tokens`);
    appended[l] = tokens;
  }
  const lengths = new Int32Array(slots);
  const sealed = new Int32Array(slots);
  let expected = headerBytes + 4;
  const entryBytes = 2 * headDim * elementBytes + 4 + 8 + 4;
  for (let s = 0; s < slots; s++, at += 8) {
    const length = view.getUint32(at, true);
    const sealedTokens = view.getUint32(at + 4, true);
    const tokens = appended[Math.floor(s / numKvHeads)];
    if (length > 0x7fffffff || sealedTokens > tokens) {
      throw new SnapshotError('invalid-header', `head slot ${s}: ${length} entries, ${sealedTokens} sealed tokens`);
    }
    lengths[s] = length;
    sealed[s] = sealedTokens;
    expected += length * entryBytes;
  }
  if (expected !== total) {
    throw new SnapshotError('invalid-header', `the entry counts need ${expected} bytes, the header states ${total}`);
  }
  const heads: SnapshotHead[] = [];
  const take = (n: number): ArrayBuffer => {
    const copy = bytes.slice(at, at + n); // fresh, aligned buffer
    at += n;
    return copy.buffer;
  };
  for (let s = 0; s < slots; s++) {
    const n = lengths[s];
    const kvBytes = n * headDim * elementBytes;
    const keys = dtypeCode === 1 ? new Float32Array(take(kvBytes)) : new Uint16Array(take(kvBytes));
    const values = dtypeCode === 1 ? new Float32Array(take(kvBytes)) : new Uint16Array(take(kvBytes));
    const logSizes = new Float32Array(take(4 * n));
    const positions = new Float64Array(take(8 * n));
    const origins = new Int32Array(take(4 * n));
    const tokens = appended[Math.floor(s / numKvHeads)];
    for (let i = 0; i < n; i++) {
      if (origins[i] < 0 || origins[i] >= tokens || !Number.isFinite(logSizes[i]) || !Number.isFinite(positions[i])) {
        throw new SnapshotError('invalid-header', `head slot ${s}, entry ${i}: inconsistent bookkeeping`);
      }
    }
    heads.push({ keys, values, logSizes, positions, origins, length: n, sealedTokens: sealed[s] });
  }
  return { config: { numLayers, numKvHeads, headDim, dtype }, appended, heads };
}

function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, '0')}`;
}

// CRC-32 (IEEE 802.3, reflected 0xEDB88320), slicing-by-4.
const CRC_TABLES = (() => {
  const t = new Uint32Array(4 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 4; k++) t[k * 256 + i] = (t[(k - 1) * 256 + i] >>> 8) ^ t[t[(k - 1) * 256 + i] & 0xff];
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  const t = CRC_TABLES;
  let crc = 0xffffffff;
  let i = 0;
  const end4 = data.length - (data.length % 4);
  for (; i < end4; i += 4) {
    crc ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    crc = t[768 + (crc & 0xff)] ^ t[512 + ((crc >>> 8) & 0xff)] ^ t[256 + ((crc >>> 16) & 0xff)] ^ t[crc >>> 24];
  }
  for (; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
