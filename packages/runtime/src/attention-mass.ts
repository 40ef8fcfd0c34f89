import { type CompressionResult, type Importance, type KVCache, remapImportance } from '@semanticache/kv-cache';

/** Which tables to collect. */
interface MassNeeds {
  window: boolean;
  accumulated: boolean;
}

/**
 * The attention mass a session holds per cache entry: of the last prompt's observation window (plus decode queries
 * under a decode-time trigger), and of every query so far. The tables follow the cache: grown as entries are
 * appended, remapped when it is compressed.
 */
export class AttentionMass {
  constructor(
    public window: Importance | undefined = undefined,
    public accumulated: Importance | undefined = undefined,
  ) {}

  /**
   * Adds one block's mass. `windowBlock`: the block's queries belong to the observation window; `freshWindow`: it is
   * a new prompt's first window block, whose table replaces the previous one (decode queries add to it).
   */
  fold(cache: KVCache, block: Float32Array[][], needs: MassNeeds, windowBlock: boolean, freshWindow: boolean): void {
    if (needs.accumulated) {
      this.accumulated = grown(this.accumulated, cache);
      addTable(this.accumulated, block);
    }
    if (needs.window && windowBlock) {
      this.window = grown(freshWindow ? undefined : this.window, cache);
      addTable(this.window, block);
    }
  }

  /**
   * Grows the tables a compression reads, and any other held (a fork of a session that collected them: they still
   * follow the cache's entries), to the cache's head lengths.
   */
  grow(cache: KVCache, needs: MassNeeds): void {
    if (needs.window || this.window) this.window = grown(this.window, cache);
    if (needs.accumulated || this.accumulated) this.accumulated = grown(this.accumulated, cache);
  }

  /** Carries the tables across a compression: merged entries add up, evicted ones drop out. */
  remap(result: CompressionResult, cache: KVCache): void {
    if (this.window) this.window = remapImportance(this.window, result, cache);
    if (this.accumulated) this.accumulated = remapImportance(this.accumulated, result, cache);
  }

  copy(): AttentionMass {
    const copyTable = (t: Importance | undefined) => t?.map((layer) => layer.map((head) => head.slice()));
    return new AttentionMass(copyTable(this.window), copyTable(this.accumulated));
  }
}

/** `table` grown (or cut) to the cache's current head lengths; new entries start at 0. */
function grown(table: Importance | undefined, cache: KVCache): Importance {
  return Array.from({ length: cache.numLayers }, (_, l) =>
    Array.from({ length: cache.numKvHeads }, (_, g) => {
      const old = table?.[l][g];
      const n = cache.length(l, g);
      if (old && old.length === n) return old;
      const fresh = new Float32Array(n);
      if (old) fresh.set(old.subarray(0, Math.min(n, old.length)));
      return fresh;
    }),
  );
}

function addTable(target: Importance, block: Float32Array[][]): void {
  for (let l = 0; l < block.length; l++) {
    for (let g = 0; g < block[l].length; g++) {
      const t = target[l][g];
      const add = block[l][g];
      for (let i = 0; i < add.length; i++) t[i] += add[i];
    }
  }
}
