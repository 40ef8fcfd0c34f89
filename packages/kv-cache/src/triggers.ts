import { isIntegerIn } from '@semanticache/internal';
import type { Budget } from './plan.js';
import type { KVCache } from './store.js';

/**
 * When to compress during decode: once any head holds more than `maxEntries`, compress back down to
 * `targetEntries` (default 3/4 of maxEntries), so that the next compression is `maxEntries - targetEntries`
 * decode steps away instead of one.
 */
export interface DecodeTrigger {
  maxEntries: number;
  targetEntries?: number;
}

function checkTrigger(trigger: DecodeTrigger): { maxEntries: number; targetEntries: number } {
  if (trigger === null || typeof trigger !== 'object') throw new TypeError('trigger: expected { maxEntries }');
  const { maxEntries } = trigger;
  if (!isIntegerIn(maxEntries, 1, Number.POSITIVE_INFINITY)) {
    throw new RangeError(`trigger.maxEntries: expected a positive integer, got ${String(maxEntries)}`);
  }
  const targetEntries = trigger.targetEntries ?? Math.max(1, Math.floor((maxEntries * 3) / 4));
  if (!isIntegerIn(targetEntries, 1, maxEntries)) {
    throw new RangeError(
      `trigger.targetEntries: expected an integer in [1, ${maxEntries}], got ${String(targetEntries)}`,
    );
  }
  return { maxEntries, targetEntries };
}

/** True when some head of some layer has outgrown `trigger.maxEntries`. */
export function needsCompression(cache: KVCache, trigger: DecodeTrigger): boolean {
  const { maxEntries } = checkTrigger(trigger);
  for (let l = 0; l < cache.numLayers; l++) {
    for (let h = 0; h < cache.numKvHeads; h++) if (cache.length(l, h) > maxEntries) return true;
  }
  return false;
}

/** The budget to pass to `compress` when `needsCompression` fired. */
export function triggerBudget(trigger: DecodeTrigger): Budget {
  return { maxEntries: checkTrigger(trigger).targetEntries };
}
