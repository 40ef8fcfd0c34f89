import { crc32, type Importance, KVCache, SnapshotError, type SnapshotErrorReason } from '@semanticache/kv-cache';

const SNAPSHOT_MAGIC = 0x4e534353; // "SCSN"
/**
 * Session snapshot format. It changes whenever the layout does; a reader accepts exactly its own format and refuses
 * any other with SnapshotError 'unsupported-version' (a newer one: upgrade the reader; an older one: re-create it).
 * 2: a CRC-32 of every byte before it ends the snapshot (1 checked only the cache part).
 */
export const SESSION_SNAPSHOT_VERSION = 2;
const SNAPSHOT_PREFIX = 12; // magic, version, header length

/** What a session carries besides its cache and options: what a snapshot holds, and what a fork copies. */
export interface SessionState {
  fed: number[];
  pending: number | undefined;
  lastLogits: Float32Array | undefined;
  windowMass: Importance | undefined;
  accumulatedMass: Importance | undefined;
  compressions: number;
}

/** The model shape a snapshot must match. */
interface SnapshotShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
}

interface SnapshotHeader {
  fed: number;
  pending: number | null;
  logits: number;
  cache: number;
  mass: (number[] | null)[];
  compressions: number;
}

/**
 * Layout (little-endian): magic, format version, header length, a JSON header, kv-cache's own snapshot, the fed ids
 * (int32), the last logits and the attention-mass tables (float32), and a CRC-32 of every byte before it.
 */
export function encodeSessionSnapshot(cache: KVCache, state: SessionState): Uint8Array {
  const cacheBytes = cache.snapshot();
  const tables = [state.windowMass, state.accumulatedMass];
  const header: SnapshotHeader = {
    fed: state.fed.length,
    pending: state.pending ?? null,
    logits: state.lastLogits?.length ?? 0,
    cache: cacheBytes.length,
    mass: tables.map((t) => (t ? t.flat().map((a) => a.length) : null)),
    compressions: state.compressions,
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const floats = [state.lastLogits ?? new Float32Array(0), ...tables.flatMap((t) => (t ? t.flat() : []))];
  const size =
    SNAPSHOT_PREFIX +
    headerBytes.length +
    cacheBytes.length +
    4 * state.fed.length +
    floats.reduce((n, f) => n + 4 * f.length, 0) +
    4;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, SNAPSHOT_MAGIC, true);
  view.setUint32(4, SESSION_SNAPSHOT_VERSION, true);
  view.setUint32(8, headerBytes.length, true);
  let at = SNAPSHOT_PREFIX;
  out.set(headerBytes, at);
  at += headerBytes.length;
  out.set(cacheBytes, at);
  at += cacheBytes.length;
  out.set(new Uint8Array(Int32Array.from(state.fed).buffer), at);
  at += 4 * state.fed.length;
  for (const f of floats) {
    out.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), at);
    at += f.byteLength;
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

/**
 * Reads `encodeSessionSnapshot` bytes (any Uint8Array view: a Node Buffer, a subarray at any offset) for a model of
 * `shape`. Throws SnapshotError on damaged or malformed data, another format version or another model's shape; the
 * whole snapshot is checked before anything is returned.
 */
export function decodeSessionSnapshot(
  bytes: Uint8Array,
  shape: SnapshotShape,
): { cache: KVCache; state: SessionState } {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes: expected a Uint8Array');
  const fail = (reason: SnapshotErrorReason, msg: string) => new SnapshotError(reason, msg);
  if (bytes.length < SNAPSHOT_PREFIX + 4) throw fail('truncated', `${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== SNAPSHOT_MAGIC) throw fail('bad-magic', 'not a session snapshot');
  const version = view.getUint32(4, true);
  if (version !== SESSION_SNAPSHOT_VERSION) {
    throw fail(
      'unsupported-version',
      version > SESSION_SNAPSHOT_VERSION
        ? `format ${version} is newer than this reader's ${SESSION_SNAPSHOT_VERSION}: upgrade @semanticache/runtime`
        : `format ${version} is older than this reader's ${SESSION_SNAPSHOT_VERSION}: re-create the snapshot`,
    );
  }
  const end = bytes.length - 4;
  const stored = view.getUint32(end, true);
  const actual = crc32(bytes.subarray(0, end));
  if (stored !== actual) {
    throw fail('checksum-mismatch', `stored CRC-32 ${stored.toString(16)}, computed ${actual.toString(16)}`);
  }
  // Past the checksum the bytes are as written; the checks below guard against a writer that was not this one.
  const headerLen = view.getUint32(8, true);
  if (SNAPSHOT_PREFIX + headerLen > end) throw fail('truncated', 'header runs past the end');
  let h: SnapshotHeader;
  try {
    h = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(SNAPSHOT_PREFIX, SNAPSHOT_PREFIX + headerLen)),
    );
  } catch {
    throw fail('invalid-header', 'header is not JSON');
  }
  const c = shape;
  const isCount = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
  if (
    h === null ||
    typeof h !== 'object' ||
    !isCount(h.fed) ||
    !isCount(h.cache) ||
    !isCount(h.compressions) ||
    (h.logits !== 0 && h.logits !== c.vocabSize) ||
    !(h.pending === null || (Number.isInteger(h.pending) && h.pending >= 0 && h.pending < c.vocabSize)) ||
    !Array.isArray(h.mass) ||
    h.mass.length !== 2 ||
    !h.mass.every(
      (lengths) =>
        lengths === null ||
        (Array.isArray(lengths) && lengths.length === c.numLayers * c.numKvHeads && lengths.every(isCount)),
    )
  ) {
    throw fail('invalid-header', 'fields missing or out of range for this model');
  }
  let at = SNAPSHOT_PREFIX + headerLen;
  // copies: typed arrays need aligned buffers of their own (a Buffer is a view into a shared pool)
  const take = (n: number) => {
    if (at + n > end) throw fail('truncated', 'payload runs past the end');
    const part = new Uint8Array(bytes.subarray(at, at + n));
    at += n;
    return part;
  };
  const cache = KVCache.restore(take(h.cache));
  if (cache.numLayers !== c.numLayers || cache.numKvHeads !== c.numKvHeads || cache.headDim !== c.headDim) {
    throw fail(
      'shape-mismatch',
      `cache is ${cache.numLayers}×${cache.numKvHeads}×${cache.headDim}, model needs ${c.numLayers}×${c.numKvHeads}×${c.headDim}`,
    );
  }
  if (cache.tokensSeen !== h.fed)
    throw fail('invalid-header', `${h.fed} ids for a cache of ${cache.tokensSeen} tokens`);
  const fed = new Int32Array(take(4 * h.fed).buffer);
  for (let i = 0; i < fed.length; i++) {
    if (fed[i] < 0 || fed[i] >= c.vocabSize)
      throw fail('invalid-header', `id ${fed[i]} at ${i} is outside the vocabulary`);
  }
  const logits = new Float32Array(take(4 * h.logits).buffer);
  const tables = h.mass.map((lengths) => {
    if (!lengths) return undefined;
    return Array.from({ length: c.numLayers }, (_, l) =>
      Array.from({ length: c.numKvHeads }, (_, g) => {
        const n = lengths[l * c.numKvHeads + g];
        // a table may lag behind its head (entries fed since it last grew), never run ahead of it
        if (n > cache.length(l, g)) throw fail('invalid-header', `mass table of head ${l}.${g}: ${n} entries`);
        return new Float32Array(take(4 * n).buffer);
      }),
    );
  });
  if (at !== end) throw fail('invalid-header', `${end - at} trailing bytes`);
  return {
    cache,
    state: {
      fed: Array.from(fed),
      pending: h.pending ?? undefined,
      lastLogits: logits.length === c.vocabSize ? logits : undefined,
      windowMass: tables[0],
      accumulatedMass: tables[1],
      compressions: h.compressions,
    },
  };
}
