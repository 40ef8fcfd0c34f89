import { chunk, type DelimiterSet } from '@semanticache/chunker';
import { type CompareTo, gscCluster, type SeedOrder } from '@semanticache/gsc-cluster';
import { float16BitsToFloat32Array, float32ArrayToFloat16Bits } from '@semanticache/internal';
import { mergeClusters, type PositionMode } from '@semanticache/merge';
import type { HeadPlan, Importance } from '../plan.js';
import type { KVCache } from '../store.js';
import { HeadWriter, identityRemap } from './head-writer.js';
import type { LayerTrace } from './policy.js';

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
export function chunkStarts(
  tokenIds: ArrayLike<number>,
  tokens: number,
  settings: Pick<SemanticacheSettings, 'delimiters' | 'minChunkLength' | 'maxChunkLength'>,
): Uint32Array {
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
export function semanticacheGsc(
  cache: KVCache,
  layer: number,
  plans: HeadPlan[],
  starts: Uint32Array,
  settings: SemanticacheSettings,
  importance: Importance | undefined,
  trace?: LayerTrace,
): Int32Array[] {
  const d = cache.headDim;
  // fp16 storage: every head's keys and values are decoded into two buffers shared by the layer's heads
  let longest = 0;
  for (const plan of plans) longest = Math.max(longest, plan.windowStart - plan.sinkEnd);
  const float16 = cache.dtype === 'float16';
  const keyRows = new Float32Array(float16 ? longest * d : 0);
  const valueRows = new Float32Array(float16 ? longest * d : 0);
  return plans.map((plan, h) => {
    const { sinkEnd, windowStart, length } = plan;
    const fixedThreshold = settings.threshold !== undefined;
    const m = windowStart - sinkEnd;
    if ((!fixedThreshold && plan.keepMiddle < 0) || m === 0) return identityRemap(length);
    const view = cache.head(layer, h);
    const keys = readRows(view.keys, sinkEnd, windowStart, d, keyRows);

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
    if (trace) Object.assign(trace.heads[h], { chunks: offsets, assignment });

    // Every compressible entry goes through merge (a cluster of one comes back as its own row, bit for bit), so the
    // rows are never gathered in JavaScript and fp16 storage is re-encoded in one bulk pass per matrix.
    // sizes only when an earlier compression left cores (raw tokens have ln s = 0, size 1, merge's default)
    let sizes: Float32Array | undefined;
    for (let i = sinkEnd; i < windowStart && sizes === undefined; i++) {
      if (view.logSizes[i] !== 0) {
        sizes = new Float32Array(m);
        for (let t = 0; t < m; t++) sizes[t] = sizeOf(view.logSizes[sinkEnd + t]);
      }
    }
    const cores = mergeClusters({
      keys,
      values: readRows(view.values, sinkEnd, windowStart, d, valueRows),
      ...(sizes ? { sizes } : {}),
      positions: view.positions.subarray(sinkEnd, windowStart),
      n: m,
      d,
      assignment,
      numClusters,
      positionMode: settings.positionMode,
      ...(settings.coreWeights === 'importance' && scores ? { weights: scores } : {}),
    });

    // a cluster takes the origin of its earliest member; a singleton keeps its own ln size and position bits
    const members = new Int32Array(numClusters);
    const clusterOrigin = new Int32Array(numClusters);
    const firstMember = new Int32Array(numClusters);
    for (let i = m - 1; i >= 0; i--) {
      const c = assignment[i];
      members[c]++;
      clusterOrigin[c] = view.origins[sinkEnd + i]; // origins ascend, so the last write is the earliest member
      firstMember[c] = sinkEnd + i;
    }
    const logSizes = new Float32Array(numClusters);
    for (let c = 0; c < numClusters; c++) {
      if (members[c] === 1) {
        logSizes[c] = view.logSizes[firstMember[c]];
        cores.positions[c] = view.positions[firstMember[c]];
      } else logSizes[c] = Math.log(cores.sizes[c]);
    }
    const order = new Int32Array(numClusters);
    let sorted = true;
    for (let c = 0; c < numClusters; c++) {
      order[c] = c;
      if (c > 0 && clusterOrigin[c] <= clusterOrigin[c - 1]) sorted = false;
    }
    if (!sorted) order.sort((a, b) => clusterOrigin[a] - clusterOrigin[b]);

    const remap = new Int32Array(length);
    for (let i = 0; i < sinkEnd; i++) remap[i] = i;
    const newIndex = new Int32Array(numClusters);
    if (sorted) {
      // cores replace the compressible range in place; the window moves down behind them
      for (let c = 0; c < numClusters; c++) newIndex[c] = sinkEnd + c;
      // fp16 storage gets the cores' bits, encoded in bulk (merge already checked that every mean is finite)
      cache.splice(layer, h, sinkEnd, windowStart, {
        keys: float16 ? float32ArrayToFloat16Bits(cores.keys) : cores.keys,
        values: float16 ? float32ArrayToFloat16Bits(cores.values) : cores.values,
        logSizes,
        positions: cores.positions,
        origins: clusterOrigin,
        length: numClusters,
      });
    } else {
      const writer = new HeadWriter(cache, sinkEnd + numClusters + (length - windowStart));
      writer.copyRange(view, 0, sinkEnd, remap);
      for (let r = 0; r < numClusters; r++) {
        const c = order[r];
        newIndex[c] = writer.push(cores.keys, cores.values, c, logSizes[c], cores.positions[c], clusterOrigin[c]);
      }
      writer.copyRange(view, windowStart, length, new Int32Array(length));
      writer.commit(cache, layer, h);
    }
    for (let i = 0; i < m; i++) remap[sinkEnd + i] = newIndex[assignment[i]];
    for (let i = windowStart; i < length; i++) remap[i] = sinkEnd + numClusters + (i - windowStart);
    return remap;
  });
}

/**
 * Rows [from, to) of a head's keys or values as fp32: a view of fp32 storage, or decoded from fp16 bits into the
 * start of `buffer`.
 */
function readRows(
  src: Float32Array | Uint16Array,
  from: number,
  to: number,
  d: number,
  buffer: Float32Array,
): Float32Array {
  const rows = src.subarray(from * d, to * d);
  return rows instanceof Float32Array ? rows : float16BitsToFloat32Array(rows, buffer.subarray(0, rows.length));
}

/** Chunk boundaries in entry space: a new chunk starts where an entry's origin crosses a token chunk start. */
export function entryChunkOffsets(origins: Int32Array, starts: Uint32Array): Uint32Array {
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
