import type { HeadPlan, Importance } from '../plan.js';
import type { KVCache } from '../store.js';
import { HeadWriter, identityRemap, topIndices } from './head-writer.js';
import type { LayerTrace } from './policy.js';
import { type Pooling, poolScores } from './pooling.js';
import { nearestSeeds } from './seed-search.js';

export interface SeededSettings {
  /** smoothing of the observation-window mass before seeds are picked (SnapKV's) */
  pooling: Pooling;
  poolSize: number;
  /** cosine a member's key needs with a seed of its chunk to join it; members below it (or alone) are dropped */
  joinThreshold: number;
  /** 'seed': a core keeps its seed's key (exact, no RoPE mixing); 'mean': the weighted mean of its members' keys */
  coreKey: 'seed' | 'mean';
  /** 'mass': ln of the members' window mass over the seed's (capped at ln size); 'size': ln size (ToMe); 'none' */
  coreBias: 'mass' | 'size' | 'none';
  /** weights of the value (and mean-key) average: observation-window 'importance' or 'size' */
  coreWeights: 'importance' | 'size';
  /**
   * 'chunk-first': a member joins a seed of its own semantic chunk; only members of a chunk without a seed look at
   * the `joinRadius` nearest seeds on each side. 'nearby': every member looks at its chunk's seeds and those.
   */
  joinScope: 'chunk-first' | 'nearby';
  /** how many seeds on each side of a member's chunk it may join besides its own chunk's */
  joinRadius: number;
  /** cosine a member needs with a seed outside its own chunk ('chunk-first': members of seedless chunks) */
  nearbyThreshold: number;
  /** a member joins only if its own window mass is at most this multiple of its seed's (Infinity: any) */
  memberMassCap: number;
  /**
   * 'adaptive': the layer's seats go to the entries with the most mass across its heads (AdaKV), each head keeping
   * at least ADAPTIVE_FLOOR of its even share; 'uniform': every head keeps its own plan's count
   */
  headBudgets: 'adaptive' | 'uniform';
}

/** Share of its even budget that a head keeps at least under adaptive head budgets (AdaKV's safeguard). */
export const ADAPTIVE_FLOOR = 0.2;

/**
 * Per-head seat counts for one layer: every head first gets ⌈ADAPTIVE_FLOOR · its plan's count⌉, the rest of the
 * layer's total goes to the highest pooled masses over all heads (ties to the lower head, then the earlier entry).
 * The layer's total is unchanged, and no head gets more than its compressible entries.
 */
export function adaptiveSeats(plans: HeadPlan[], pooled: Float32Array[]): Int32Array {
  const seats = new Int32Array(plans.length);
  let left = 0;
  let candidates = 0;
  const sortedByHead: Float32Array[] = [];
  for (let h = 0; h < plans.length; h++) {
    const { keepMiddle, sinkEnd, windowStart } = plans[h];
    seats[h] = Math.ceil(ADAPTIVE_FLOOR * keepMiddle);
    left += keepMiddle - seats[h];
    // ascending; the head's floor takes its own best entries off the top
    const sorted = pooled[h].slice(sinkEnd, windowStart).sort();
    sortedByHead.push(sorted.subarray(0, sorted.length - seats[h]));
    candidates += sorted.length - seats[h];
  }
  if (left === 0) return seats;
  // the left-th highest score over all heads' remaining entries; the seats above it go to their heads, and seats
  // at exactly that score to the lower heads first
  const all = new Float32Array(candidates);
  let n = 0;
  for (const sorted of sortedByHead) {
    all.set(sorted, n);
    n += sorted.length;
  }
  all.sort();
  const cut = all[candidates - left];
  let ties = left;
  // per head, the entries above the cut sit at the top of its ascending run: count them by binary search
  const equalFrom = new Int32Array(plans.length);
  for (let h = 0; h < plans.length; h++) {
    const sorted = sortedByHead[h];
    const above = sorted.length - firstAbove(sorted, cut);
    equalFrom[h] = sorted.length - above;
    seats[h] += above;
    ties -= above;
  }
  for (let h = 0; h < plans.length && ties > 0; h++) {
    const sorted = sortedByHead[h];
    for (let at = equalFrom[h] - 1; ties > 0 && at >= 0 && sorted[at] === cut; at--) {
      seats[h]++;
      ties--;
    }
  }
  return seats;
}

/**
 * The `count` entries of [from, to) with the highest pooled score, like SnapKV's top-k, except that among entries
 * tied at the cut (pooling gives a peak's whole neighbourhood the peak's score) those with more mass of their own come
 * first, then the earlier: the peak itself is a seed whenever any of its neighbourhood is. Ascending indices.
 */
function topSeeds(pooled: Float32Array, mass: Float32Array, from: number, to: number, count: number): Int32Array {
  const out = topIndices(pooled, from, to, count);
  if (out.length === 0 || out.length === to - from) return out;
  let cut = Number.POSITIVE_INFINITY;
  for (const i of out) cut = Math.min(cut, pooled[i]);
  const tied: number[] = [];
  for (let i = from; i < to; i++) if (pooled[i] === cut) tied.push(i);
  let above = 0;
  for (const i of out) if (pooled[i] > cut) above++;
  if (tied.length === out.length - above) return out;
  tied.sort((a, b) => mass[b] - mass[a] || a - b);
  const chosen = new Int32Array(out.length);
  let w = 0;
  for (const i of out) if (pooled[i] > cut) chosen[w++] = i;
  for (let r = 0; w < chosen.length; r++) chosen[w++] = tied[r];
  return chosen.sort();
}

/** Index of the first value above `cut` in an ascending run. */
function firstAbove(sorted: Float32Array, cut: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] > cut) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Importance-seeded SemantiCache on one layer. Per KV head, the compressible entries with the most pooled
 * observation-window mass become seeds (as many as the head's seats: SnapKV's choice, ties at the cut to the entries
 * with more mass of their own). Every other entry joins the seed of its own semantic chunk whose key is most similar
 * (cosine ≥ `joinThreshold`); an entry of a chunk without a seed may join the most similar of the `joinRadius`
 * nearest seeds on each side (cosine ≥ `nearbyThreshold`); an entry with more window mass than `memberMassCap` times
 * its seed's stays out (blended in, it would answer for the seed's key: a copied digit turns into its neighbour's);
 * the rest is dropped. A seed and its members become one
 * core: the mass-weighted mean value, so what the members added to the window's attention output survives; the
 * seed's key, so the core is addressed exactly like the token that earned the seat; and the logit bias
 * `ln(Σ mass / mass_seed)` (capped at ln size), so the core draws the attention its members drew together (at equal
 * mass, ToMe's ln size). `coreBias: 'none'` leaves the seed's bias (values-only merging, like merge-values).
 *
 * `chunkOffsets(h)` gives head h's semantic chunks as offsets into its compressible entries (entry − sinkEnd).
 */
export function semanticacheSeeded(
  cache: KVCache,
  layer: number,
  plans: HeadPlan[],
  chunkOffsets: (h: number) => Uint32Array,
  settings: SeededSettings,
  importance: Importance,
  trace?: LayerTrace,
): Int32Array[] {
  const d = cache.headDim;
  const pooled = plans.map((_, h) => poolScores(importance[layer][h], settings.pooling, settings.poolSize));
  const adaptive = settings.headBudgets === 'adaptive' && plans.every((p) => p.keepMiddle >= 0);
  const seats = adaptive ? adaptiveSeats(plans, pooled) : Int32Array.from(plans, (p) => p.keepMiddle);
  return plans.map((plan, h) => {
    const { sinkEnd, windowStart, length } = plan;
    if (plan.keepMiddle < 0) return identityRemap(length);
    const m = windowStart - sinkEnd;
    const mass = importance[layer][h];
    const seeds = topSeeds(pooled[h], mass, sinkEnd, windowStart, seats[h]);
    const view = cache.head(layer, h);
    const keys = cache.readFloat32(layer, h, 'keys');
    const values = cache.readFloat32(layer, h, 'values');

    // seedOf[e - sinkEnd]: index into `seeds` of the core entry e joins, or -1 (dropped)
    const seedOf = new Int32Array(m).fill(-1);
    for (let s = 0; s < seeds.length; s++) seedOf[seeds[s] - sinkEnd] = s;
    const joins = (settings.joinThreshold <= 1 || settings.nearbyThreshold <= 1) && seeds.length > 0;
    if (trace) Object.assign(trace.heads[h], { chunks: chunkOffsets(h), assignment: seedOf });
    if (joins) {
      // each entry's candidate seeds [lo, hi): its chunk's, or the joinRadius nearest on each side (seeds ascend,
      // chunks are contiguous); seeds themselves get an empty range
      const lo = new Int32Array(m);
      const hi = new Int32Array(m);
      const fromOwnChunk = new Uint8Array(m);
      const offsets = trace?.heads[h].chunks ?? chunkOffsets(h);
      let first = 0;
      for (let c = 0; c + 1 < offsets.length; c++) {
        const from = offsets[c];
        const to = offsets[c + 1];
        while (first < seeds.length && seeds[first] - sinkEnd < from) first++;
        let last = first;
        while (last < seeds.length && seeds[last] - sinkEnd < to) last++;
        const own = settings.joinScope === 'chunk-first' && last > first;
        const a = own ? first : Math.max(0, first - settings.joinRadius);
        const b = own ? last : Math.min(seeds.length, last + settings.joinRadius);
        for (let t = from; t < to; t++) {
          if (seedOf[t] >= 0) continue;
          lo[t] = a;
          hi[t] = b;
          fromOwnChunk[t] = own ? 1 : 0;
        }
      }
      const unit = unitRows(keys, seeds, d);
      const found = nearestSeeds(keys.subarray(sinkEnd * d, windowStart * d), m, unit, lo, hi, d);
      for (let t = 0; t < m; t++) {
        const s = found.best[t];
        if (seedOf[t] >= 0 || s < 0) continue;
        const sq = found.squares[t];
        // a zero key has no direction: it joins only when any cosine would do
        const cos = sq > 0 ? found.dot[t] / Math.sqrt(sq) : 0;
        const threshold = fromOwnChunk[t] ? settings.joinThreshold : settings.nearbyThreshold;
        // written as "not heavier": Infinity × a zero seed mass is NaN, and an uncapped member still joins
        const light = !(mass[sinkEnd + t] > settings.memberMassCap * mass[seeds[s]]);
        if ((sq > 0 ? cos >= threshold : threshold <= 0) && light) seedOf[t] = s;
      }
    }

    // per-core sums: weights of the value (and key) means, window mass, sizes
    const k = seeds.length;
    // sizes are 1 until an earlier compression made cores: skip the exponentials on a raw head
    let raw = true;
    for (let i = sinkEnd; i < windowStart && raw; i++) raw = view.logSizes[i] === 0;
    const sizeOf = raw ? (_: number) => 1 : (i: number) => Math.exp(view.logSizes[i]);
    let massTotal = 0;
    let sizeTotal = 0;
    for (let i = sinkEnd; i < windowStart; i++) {
      massTotal += mass[i];
      sizeTotal += sizeOf(i);
    }
    // a mass floor proportional to size, far below any real mass, so heads without window mass fall back to sizes
    const floor = massTotal > 0 ? (1e-6 * massTotal) / sizeTotal : 1;
    const members = new Int32Array(k);
    for (let t = 0; t < m; t++) if (seedOf[t] >= 0) members[seedOf[t]]++;
    const weightSum = new Float64Array(k);
    const massSum = new Float64Array(k);
    const sizeSum = new Float64Array(k);
    const meanKey = settings.coreKey === 'mean';
    const keySum = new Float64Array(meanKey ? k * d : 0);
    const valueSum = new Float64Array(k * d);
    for (let t = 0; t < m; t++) {
      const s = seedOf[t];
      if (s < 0 || members[s] === 1) continue; // a seed alone is copied as it is
      const i = sinkEnd + t;
      const size = sizeOf(i);
      const massI = mass[i] + floor * size;
      const w = settings.coreWeights === 'importance' ? massI : size;
      weightSum[s] += w;
      massSum[s] += massI;
      sizeSum[s] += size;
      for (let j = 0; j < d; j++) valueSum[s * d + j] += w * values[i * d + j];
      if (meanKey) for (let j = 0; j < d; j++) keySum[s * d + j] += w * keys[i * d + j];
    }

    const writer = new HeadWriter(cache, sinkEnd + k + (length - windowStart));
    const remap = new Int32Array(length).fill(-1);
    writer.copyRange(view, 0, sinkEnd, remap);
    const keyRow = new Float32Array(d);
    const valueRow = new Float32Array(d);
    for (let s = 0; s < k; s++) {
      const seed = seeds[s];
      if (members[s] === 1) {
        remap[seed] = writer.copy(view, seed); // bit for bit
        continue;
      }
      const inv = 1 / weightSum[s];
      for (let j = 0; j < d; j++) {
        valueRow[j] = valueSum[s * d + j] * inv;
        keyRow[j] = meanKey ? keySum[s * d + j] * inv : keys[seed * d + j];
      }
      const seedSize = sizeOf(seed);
      const logSize =
        settings.coreBias === 'size'
          ? Math.log(sizeSum[s])
          : settings.coreBias === 'none'
            ? view.logSizes[seed]
            : view.logSizes[seed] +
              Math.log(Math.min(massSum[s] / (mass[seed] + floor * seedSize), sizeSum[s] / seedSize));
      remap[seed] = writer.push(keyRow, valueRow, 0, logSize, view.positions[seed], view.origins[seed]);
    }
    writer.copyRange(view, windowStart, length, remap);
    for (let t = 0; t < m; t++) if (seedOf[t] >= 0) remap[sinkEnd + t] = remap[seeds[seedOf[t]]];
    writer.commit(cache, layer, h);
    return remap;
  });
}

/** Rows of `keys` at `rows`, scaled to unit length (zero rows stay zero). */
function unitRows(keys: Float32Array, rows: Int32Array, d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let r = 0; r < rows.length; r++) {
    const o = rows[r] * d;
    let sq = 0;
    for (let j = 0; j < d; j++) sq += keys[o + j] * keys[o + j];
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let j = 0; j < d; j++) out[r * d + j] = keys[o + j] * inv;
  }
  return out;
}
