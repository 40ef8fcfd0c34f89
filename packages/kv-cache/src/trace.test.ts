import { chunk } from '@semanticache/chunker';
import { describe, expect, it } from 'vitest';
import { type CompressionResult, compress } from './compress.js';
import { POLICIES, type PolicyName } from './registry.js';
import { KVCache } from './store.js';
import { delimiters, randomImportance, syntheticCache } from './test-support.js';

const SINKS = 4;
const WINDOW = 32;

function run(policy: PolicyName, options: Record<string, unknown>, tokens = 300) {
  const { cache, tokenIds } = syntheticCache({ tokens, numLayers: 2, numKvHeads: 3 });
  const result = compress(cache, policy, {
    tokenIds,
    delimiters,
    windowImportance: randomImportance(cache, 11),
    accumulatedImportance: randomImportance(cache, 12),
    ...options,
  } as never);
  return { cache, tokenIds, result };
}

/** Entries with the same trace id went to the same entry, and entries with different ids to different ones. */
function expectAssignmentMatchesRemap(result: CompressionResult): void {
  for (const [l, layer] of (result.trace?.layers ?? []).entries()) {
    for (const [h, head] of layer.heads.entries()) {
      const { sinkEnd, windowStart, assignment } = head;
      expect(assignment, `layer ${l} head ${h}`).toBeInstanceOf(Int32Array);
      if (!assignment) continue;
      expect(assignment.length).toBe(windowStart - sinkEnd);
      const remap = result.remap[l][h];
      const entryOf = new Map<number, number>();
      for (let t = 0; t < assignment.length; t++) {
        const target = remap[sinkEnd + t];
        if (assignment[t] < 0) {
          expect(target, `dropped entry ${sinkEnd + t}`).toBe(-1);
          continue;
        }
        const seen = entryOf.get(assignment[t]);
        if (seen === undefined) entryOf.set(assignment[t], target);
        else expect(target).toBe(seen);
      }
      // one entry per group, and the ids are dense
      expect(new Set(entryOf.values()).size).toBe(entryOf.size);
      expect(Math.max(-1, ...assignment) + 1).toBe(entryOf.size);
    }
  }
}

describe('compress trace', () => {
  it('is absent unless asked for, and asking for it changes nothing in the cache', () => {
    for (const policy of POLICIES) {
      const budget = policy === 'full' ? {} : { budget: { ratio: 0.75 } };
      const plain = run(policy, budget);
      const traced = run(policy, { ...budget, trace: true });
      expect(plain.result.trace, policy).toBeUndefined();
      expect('trace' in plain.result).toBe(false);
      expect(traced.result.trace?.layers).toHaveLength(2);
      expect(traced.result.remap).toEqual(plain.result.remap);
      expect(traced.cache.snapshot()).toEqual(plain.cache.snapshot());
    }
  });

  it('rejects a trace option that is not a boolean', () => {
    const cache = new KVCache({ numLayers: 1, numKvHeads: 1, headDim: 4, dtype: 'float32' });
    expect(() => compress(cache, 'full', { trace: 'yes' } as never)).toThrow(/trace: expected a boolean/);
  });

  it("records every head's protected span", () => {
    const { cache, result } = run('snapkv', { budget: { ratio: 0.5 }, trace: true });
    for (const layer of result.trace?.layers ?? []) {
      expect(layer.tokenChunks).toBeUndefined();
      for (const head of layer.heads) {
        expect(head).toEqual({ length: 300, sinkEnd: SINKS, windowStart: 300 - WINDOW });
      }
    }
    expect(cache.length(0, 0)).toBe(150);
  });

  it('semanticache (paper): the token chunks of the stream, each head’s chunks and its GSC clusters', () => {
    const { tokenIds, result } = run('semanticache', { preset: 'paper', threshold: 0.5, trace: true });
    const tokenChunks = chunk(tokenIds, delimiters);
    for (const layer of result.trace?.layers ?? []) {
      expect(layer.tokenChunks).toEqual(tokenChunks);
      for (const head of layer.heads) {
        // the first compression: entries are tokens, so entry chunks are the token chunks cut to the span
        const inside = Array.from(tokenChunks).filter((o) => o > SINKS && o < 300 - WINDOW);
        expect(Array.from(head.chunks ?? [])).toEqual([0, ...inside.map((o) => o - SINKS), 300 - WINDOW - SINKS]);
        // a cluster never crosses a chunk
        const chunks = head.chunks as Uint32Array;
        const assignment = head.assignment as Int32Array;
        for (let c = 0; c + 1 < chunks.length; c++) {
          const here = new Set(assignment.subarray(chunks[c], chunks[c + 1]));
          const elsewhere = [...assignment.subarray(0, chunks[c]), ...assignment.subarray(chunks[c + 1])];
          for (const id of elsewhere) expect(here.has(id)).toBe(false);
        }
      }
    }
    expectAssignmentMatchesRemap(result);
  });

  it('semanticache (default): the core each entry joined, −1 for the dropped ones', () => {
    const { result } = run('semanticache', { budget: { ratio: 0.75 }, trace: true });
    expectAssignmentMatchesRemap(result);
    // members heavier than their seed, or too far from every seed they may join, are dropped
    const dropped = result.trace?.layers.flatMap((l) => l.heads.flatMap((h) => Array.from(h.assignment ?? [])));
    expect(dropped?.filter((a) => a < 0).length).toBeGreaterThan(0);
  });

  it('semanticache with a budget joins chunks per head: the trace has the chunks it used, not the token chunks', () => {
    const { result } = run('semanticache', { preset: 'paper', budget: { maxEntries: 36 + 3 }, trace: true });
    for (const layer of result.trace?.layers ?? []) {
      expect((layer.tokenChunks as Uint32Array).length - 1).toBeGreaterThan(3);
      for (const head of layer.heads) {
        expect((head.chunks as Uint32Array).length - 1).toBeLessThanOrEqual(3);
        expect(new Set(head.assignment).size).toBe(3);
      }
    }
    expectAssignmentMatchesRemap(result);
  });

  it('chunkkv: the fixed-length chunks of the compressible span, the same in every head', () => {
    const { result } = run('chunkkv', { budget: { ratio: 0.5 }, chunkLength: 10, trace: true });
    const m = 300 - WINDOW - SINKS;
    const expected = [...Array.from({ length: Math.ceil(m / 10) }, (_, c) => c * 10), m];
    for (const layer of result.trace?.layers ?? []) {
      for (const head of layer.heads) {
        expect(Array.from(head.chunks ?? [])).toEqual(expected);
        expect(head.assignment).toBeUndefined();
      }
    }
  });

  it('leaves the chunks and assignment out for heads that stayed as they were', () => {
    const { result } = run('semanticache', { budget: { maxEntries: 1000 }, trace: true });
    for (const layer of result.trace?.layers ?? []) {
      for (const head of layer.heads) expect(head).toEqual({ length: 300, sinkEnd: SINKS, windowStart: 300 - WINDOW });
    }
  });
});
