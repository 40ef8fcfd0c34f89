import { chunk, type DelimiterSet } from '@semanticache/chunker';
import { type CompareTo, gscCluster, type SeedOrder } from '@semanticache/gsc-cluster';
import { mergeClusters, type PositionMode } from '@semanticache/merge';
import { decodeFloat16BitsRun, float16BitsToFloat32Array } from '../fp16.js';
import type { HeadPlan, Importance } from '../plan.js';
import type { KVCache } from '../store.js';
import { HeadWriter, identityRemap } from './head-writer.js';

export interface SemanticacheSettings {
  delimiters: DelimiterSet;
  minChunkLength?: number;
  maxChunkLength?: number;
  /** fixed τ (no budget): every compressible entry is clustered at this cosine threshold */
  threshold?: number;
  seedOrder: SeedOrder;
  compareTo: CompareTo;
  positionMode: PositionMode;
  /** 'size': cores are size-weighted means; 'importance': weighted by observation-window mass */
  coreWeights: 'size' | 'importance';
  maxSearchSteps?: number;
}

/**
 * Token-level chunks of the whole appended stream, as chunk start ordinals. Computed once per token count, since
 * all layers see the same tokens.
 */
export function chunkStarts(tokenIds: ArrayLike<number>, tokens: number, settings: SemanticacheSettings): Uint32Array {
  const ids = ArrayBuffer.isView(tokenIds)
    ? (tokenIds as unknown as Uint32Array).subarray(0, tokens)
    : Array.prototype.slice.call(tokenIds, 0, tokens);
  const options: { minLength?: number; maxLength?: number } = {};
  if (settings.minChunkLength !== undefined) options.minLength = settings.minChunkLength;
  if (settings.maxChunkLength !== undefined) options.maxLength = settings.maxChunkLength;
  return chunk(ids, settings.delimiters, options);
}

/** exp(ln s), snapped to the integer it came from (sizes are token counts; ln is stored in fp32). */
function sizeOf(logSize: number): number {
  const s = Math.exp(logSize);
  const r = Math.round(s);
  return Math.abs(s - r) <= 1e-4 * s ? r : s;
}

/**
 * SemantiCache on one layer: per KV head, the compressible entries are grouped by the chunk their first token falls
 * in (chunks of the whole token stream, so cores from an earlier compression rejoin their chunk), clustered by GSC
 * on keys and merged into cores with sizes. With a budget, τ is searched per head so that exactly the budget's number
 * of cores comes out; when the budget asks for fewer cores than there are chunks, the adjacent chunk pairs with the
 * fewest entries are joined first.
 */
export function semanticache(
  cache: KVCache,
  layer: number,
  plans: HeadPlan[],
  starts: Uint32Array,
  settings: SemanticacheSettings,
  importance: Importance | undefined,
): Int32Array[] {
  const d = cache.headDim;
  return plans.map((plan, h) => {
    const { sinkEnd, windowStart, length } = plan;
    const fixedThreshold = settings.threshold !== undefined;
    const m = windowStart - sinkEnd;
    if ((!fixedThreshold && plan.keepMiddle < 0) || m === 0) return identityRemap(length);
    const view = cache.head(layer, h);
    const keys = readRows(view.keys, sinkEnd, windowStart, d);

    let offsets = entryChunkOffsets(view.origins.subarray(sinkEnd, windowStart), starts);
    if (!fixedThreshold && offsets.length - 1 > plan.keepMiddle) offsets = joinChunks(offsets, plan.keepMiddle);

    const scores = importance?.[layer][h].subarray(sinkEnd, windowStart);
    const { assignment, numClusters } = gscCluster(keys, m, d, offsets, {
      ...(fixedThreshold ? { threshold: settings.threshold } : { targetClusters: plan.keepMiddle }),
      seedOrder: settings.seedOrder,
      compareTo: settings.compareTo,
      ...(settings.maxSearchSteps !== undefined ? { maxSearchSteps: settings.maxSearchSteps } : {}),
      ...(scores && settings.seedOrder === 'importance' ? { importance: scores } : {}),
    });

    // Only clusters with two or more members go through merge; singletons are copied bit for bit.
    const members = new Int32Array(numClusters);
    for (let i = 0; i < m; i++) members[assignment[i]]++;
    const mergedId = new Int32Array(numClusters).fill(-1);
    let numMerged = 0;
    let mergedEntries = 0;
    for (let c = 0; c < numClusters; c++) {
      if (members[c] > 1) {
        mergedId[c] = numMerged++;
        mergedEntries += members[c];
      }
    }
    const rows = new Int32Array(mergedEntries); // head entry index of every merged member
    const subAssignment = new Int32Array(mergedEntries);
    for (let i = 0, w = 0; i < m; i++) {
      const c = mergedId[assignment[i]];
      if (c >= 0) {
        rows[w] = sinkEnd + i;
        subAssignment[w++] = c;
      }
    }
    const sizes = new Float32Array(mergedEntries);
    const positions = new Float64Array(mergedEntries);
    for (let w = 0; w < mergedEntries; w++) {
      sizes[w] = sizeOf(view.logSizes[rows[w]]);
      positions[w] = view.positions[rows[w]];
    }
    let weights: Float32Array | undefined;
    if (settings.coreWeights === 'importance' && scores) {
      weights = new Float32Array(mergedEntries);
      for (let w = 0; w < mergedEntries; w++) weights[w] = scores[rows[w] - sinkEnd];
    }
    const cores = mergeClusters({
      keys: packRows(view.keys, rows, d),
      values: packRows(view.values, rows, d),
      sizes,
      positions,
      n: mergedEntries,
      d,
      assignment: subAssignment,
      numClusters: numMerged,
      positionMode: settings.positionMode,
      ...(weights ? { weights } : {}),
    });

    // a cluster takes the origin of its earliest member; entries are written in origin order
    const clusterOrigin = new Int32Array(numClusters).fill(0x7fffffff);
    const firstMember = new Int32Array(numClusters);
    for (let i = m - 1; i >= 0; i--) {
      const c = assignment[i];
      clusterOrigin[c] = view.origins[sinkEnd + i]; // origins ascend, so the last write is the earliest member
      firstMember[c] = sinkEnd + i;
    }
    const order = new Int32Array(numClusters);
    let sorted = true;
    for (let c = 0; c < numClusters; c++) {
      order[c] = c;
      if (c > 0 && clusterOrigin[c] <= clusterOrigin[c - 1]) sorted = false;
    }
    if (!sorted) order.sort((a, b) => clusterOrigin[a] - clusterOrigin[b]);

    const writer = new HeadWriter(cache, sinkEnd + numClusters + (length - windowStart));
    const remap = new Int32Array(length);
    writer.copyRange(view, 0, sinkEnd, remap);
    const newIndex = new Int32Array(numClusters);
    for (let r = 0; r < numClusters; ) {
      const c = order[r];
      const k = mergedId[c];
      if (k >= 0) {
        newIndex[c] = writer.push(
          cores.keys,
          cores.values,
          k,
          Math.log(cores.sizes[k]),
          cores.positions[k],
          clusterOrigin[c],
        );
        r++;
        continue;
      }
      // a run of singletons over consecutive entries is copied as one block
      let run = 1;
      while (
        r + run < numClusters &&
        mergedId[order[r + run]] < 0 &&
        firstMember[order[r + run]] === firstMember[c] + run
      ) {
        run++;
      }
      const at = writer.copyRun(view, firstMember[c], run);
      for (let t = 0; t < run; t++) newIndex[order[r + t]] = at + t;
      r += run;
    }
    for (let i = 0; i < m; i++) remap[sinkEnd + i] = newIndex[assignment[i]];
    writer.copyRange(view, windowStart, length, remap);
    writer.commit(cache, layer, h);
    return remap;
  });
}

/** Rows [from, to) of a head's keys or values as fp32: a view of fp32 storage, decoded from fp16 bits otherwise. */
function readRows(src: Float32Array | Uint16Array, from: number, to: number, d: number): Float32Array {
  const rows = src.subarray(from * d, to * d);
  return rows instanceof Float32Array ? rows : float16BitsToFloat32Array(rows);
}

/** Below this many elements a plain loop copies faster than subarray + set (a subarray costs an allocation). */
const BLOCK_COPY_MIN = 128;

/** The given ascending head entry rows of a head's keys or values, packed as fp32 (decoded from fp16 bits if stored
 * so); consecutive rows are copied as one run. */
function packRows(src: Float32Array | Uint16Array, rows: Int32Array, d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  const outBits = new Uint32Array(out.buffer);
  let w = 0;
  while (w < rows.length) {
    let end = w + 1;
    while (end < rows.length && rows[end] === rows[end - 1] + 1) end++;
    const from = rows[w] * d;
    const count = (end - w) * d;
    const to = w * d;
    if (!(src instanceof Float32Array)) decodeFloat16BitsRun(src, from, outBits, to, count);
    else if (count >= BLOCK_COPY_MIN) out.set(src.subarray(from, from + count), to);
    else for (let j = 0; j < count; j++) out[to + j] = src[from + j];
    w = end;
  }
  return out;
}

/** Chunk boundaries in entry space: a new chunk starts where an entry's origin crosses a token chunk start. */
function entryChunkOffsets(origins: Int32Array, starts: Uint32Array): Uint32Array {
  const m = origins.length;
  const offsets = new Uint32Array(m + 1);
  let count = 1;
  let c = 0; // token chunk of the previous entry
  for (let i = 0; i < m; i++) {
    let next = c;
    while (next + 1 < starts.length && starts[next + 1] <= origins[i]) next++;
    if (i > 0 && next !== c) offsets[count++] = i;
    c = next;
  }
  offsets[count++] = m;
  return offsets.slice(0, count);
}

/** Removes the boundaries between the adjacent chunk pairs with the fewest entries until at most `maxChunks` remain. */
function joinChunks(offsets: Uint32Array, maxChunks: number): Uint32Array {
  const numChunks = offsets.length - 1;
  const inner = Int32Array.from({ length: numChunks - 1 }, (_, b) => b + 1); // boundary index into offsets
  const pairLength = (b: number) => offsets[b + 1] - offsets[b - 1];
  inner.sort((a, b) => pairLength(a) - pairLength(b) || a - b);
  const drop = new Uint8Array(offsets.length);
  for (let r = 0; r < numChunks - maxChunks; r++) drop[inner[r]] = 1;
  return offsets.filter((_, b) => drop[b] === 0);
}
