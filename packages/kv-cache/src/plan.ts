import { isIntegerIn } from '@semanticache/internal';
import { MissingImportanceError } from './errors.js';
import type { KVCache } from './store.js';

/**
 * How much to keep per KV head: `ratio` = fraction of the tokens the head has seen that is removed (on a fresh cache
 * kvpress's convention; compressing again only removes what new tokens added, so ratios never compound), or an entry
 * cap. A budget is a ceiling: a head whose protected entries exceed it keeps them and is counted as above budget.
 */
export type Budget = { ratio: number } | { maxEntries: number };

/** Attention mass per entry, [layer][kvHead], each of that head's current length. */
export type Importance = Float32Array[][];

/** First tokens never merged or evicted (attention sinks). */
export const DEFAULT_SINK_TOKENS = 4;
/** Most recent tokens never merged or evicted; also the observation window whose queries score the rest. */
export const DEFAULT_RECENT_WINDOW = 32;

export interface ProtectionOptions {
  /** default DEFAULT_SINK_TOKENS */
  sinkTokens?: number;
  /** default DEFAULT_RECENT_WINDOW */
  recentWindow?: number;
}

/** One head's layout: entries [0, sinkEnd) are sinks, [windowStart, length) the recent window, the rest compressible. */
export interface HeadPlan {
  length: number;
  sinkEnd: number;
  windowStart: number;
  /** compressible entries to keep; -1 when the head is already within budget and stays as it is */
  keepMiddle: number;
  /** the budget is below what this head must keep (its protected entries, and a merging policy's one core) */
  aboveBudget: boolean;
}

export function checkNonNegativeInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!isIntegerIn(value, 0, Number.POSITIVE_INFINITY)) {
    throw new RangeError(`${name}: expected a non-negative integer, got ${String(value)}`);
  }
  return value;
}

export function checkBudget(budget: unknown): Budget {
  if (budget === null || typeof budget !== 'object') {
    throw new TypeError('budget: expected { ratio } or { maxEntries }');
  }
  const b = budget as { ratio?: unknown; maxEntries?: unknown };
  if (b.ratio !== undefined && b.maxEntries !== undefined) {
    throw new TypeError('budget: give either ratio or maxEntries, not both');
  }
  if (b.ratio !== undefined) {
    if (typeof b.ratio !== 'number' || !(b.ratio >= 0 && b.ratio < 1)) {
      throw new RangeError(`budget.ratio: expected the fraction removed, in [0, 1), got ${String(b.ratio)}`);
    }
    return { ratio: b.ratio };
  }
  if (b.maxEntries !== undefined) {
    if (!isIntegerIn(b.maxEntries, 1, Number.POSITIVE_INFINITY)) {
      throw new RangeError(`budget.maxEntries: expected a positive integer, got ${String(b.maxEntries)}`);
    }
    return { maxEntries: b.maxEntries };
  }
  throw new TypeError('budget: expected { ratio } or { maxEntries }');
}

/**
 * Entries a head of `length` that has seen `tokensSeen` tokens may keep: ⌊tokensSeen·(1 − ratio)⌋ (kvpress's
 * ⌊length·(1 − ratio)⌋ on a fresh cache), or maxEntries; never more than it holds.
 */
export function targetEntries(length: number, budget: Budget, tokensSeen = length): number {
  if ('ratio' in budget) return Math.min(length, Math.floor(tokensSeen * (1 - budget.ratio) + 1e-9));
  return Math.min(length, budget.maxEntries);
}

/**
 * Splits every head into sinks / compressible / window by origin and works out how many compressible entries each
 * keeps. A head whose budget is below its protected entries keeps those and `minKeepMiddle` compressible entries
 * (what a merging policy needs to have somewhere to merge into): the budget is a ceiling, never a precondition.
 */
export function planHeads(
  cache: KVCache,
  budget: Budget | undefined,
  protection: ProtectionOptions,
  minKeepMiddle = 0,
): HeadPlan[][] {
  const sinkTokens = checkNonNegativeInteger('sinkTokens', protection.sinkTokens, DEFAULT_SINK_TOKENS);
  const recentWindow = checkNonNegativeInteger('recentWindow', protection.recentWindow, DEFAULT_RECENT_WINDOW);
  const plans: HeadPlan[][] = [];
  for (let layer = 0; layer < cache.numLayers; layer++) {
    const seen = cache.appendedTokens(layer);
    const windowFrom = seen - recentWindow;
    const heads = cache.heads(layer);
    const layerPlans: HeadPlan[] = [];
    for (let h = 0; h < heads.length; h++) {
      const { origins, length } = heads[h];
      for (let i = 1; i < length; i++) {
        if (origins[i] <= origins[i - 1]) {
          throw new RangeError(`layer ${layer} head ${h}: entries are not in origin order (entry ${i})`);
        }
      }
      let sinkEnd = 0;
      while (sinkEnd < length && origins[sinkEnd] < sinkTokens) sinkEnd++;
      let windowStart = length;
      while (windowStart > sinkEnd && origins[windowStart - 1] >= windowFrom) windowStart--;
      const protectedCount = sinkEnd + (length - windowStart);
      const middle = windowStart - sinkEnd;
      let keepMiddle = -1;
      let aboveBudget = false;
      if (budget !== undefined) {
        const target = targetEntries(length, budget, seen);
        if (target < length) {
          keepMiddle = Math.max(target - protectedCount, Math.min(minKeepMiddle, middle));
          aboveBudget = protectedCount + keepMiddle > target;
          if (keepMiddle >= middle) keepMiddle = -1; // nothing left to remove
        }
      }
      layerPlans.push({ length, sinkEnd, windowStart, keepMiddle, aboveBudget });
    }
    plans.push(layerPlans);
  }
  return plans;
}

/** Checks an importance table's shape against the cache; throws MissingImportanceError when it is absent. */
export function checkImportance(name: string, importance: unknown, cache: KVCache, policy: string): Importance {
  if (importance === undefined || importance === null) {
    throw new MissingImportanceError(
      `${name}: policy '${policy}' scores entries by attention mass; pass ${name}[layer][kvHead] (Float32Array)`,
    );
  }
  if (!Array.isArray(importance) || importance.length !== cache.numLayers) {
    throw new TypeError(`${name}: expected an array of ${cache.numLayers} layers`);
  }
  for (let l = 0; l < cache.numLayers; l++) {
    const layer = importance[l];
    if (!Array.isArray(layer) || layer.length !== cache.numKvHeads) {
      throw new TypeError(`${name}[${l}]: expected an array of ${cache.numKvHeads} KV heads`);
    }
    for (let h = 0; h < cache.numKvHeads; h++) {
      const scores = layer[h];
      const n = cache.length(l, h);
      if (!(scores instanceof Float32Array)) throw new TypeError(`${name}[${l}][${h}]: expected a Float32Array`);
      if (scores.length !== n) {
        throw new RangeError(`${name}[${l}][${h}]: expected ${n} entries (the head's length), got ${scores.length}`);
      }
      for (let i = 0; i < n; i++) {
        if (!(scores[i] >= 0 && scores[i] < Number.POSITIVE_INFINITY)) {
          throw new RangeError(`${name}[${l}][${h}][${i}]: expected a finite mass ≥ 0, got ${scores[i]}`);
        }
      }
    }
  }
  return importance as Importance;
}
