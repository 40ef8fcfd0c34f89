import type { DelimiterLevel, DelimiterSet } from '@semanticache/chunker';
import {
  type Budget,
  checkBudget,
  checkPolicyOptions,
  type DecodeTrigger,
  POLICIES,
  type PolicyName,
  type PolicyNeeds,
  type PolicyOptions,
  policyNeeds,
  policyUsesBudget,
} from '@semanticache/kv-cache';

/** Inputs of `compress` the session supplies, refused in `options` (delimiters may be given: they replace the model's). */
const SUPPLIED_BY_RUNTIME = ['budget', 'tokenIds', 'windowImportance', 'accumulatedImportance'] as const;
type SuppliedByRuntime = (typeof SUPPLIED_BY_RUNTIME)[number] | 'delimiters';

/** Policy-specific knobs of `@semanticache/kv-cache`'s `compress`, minus what the session supplies itself. */
export type PolicyKnobs<P extends PolicyName> = Omit<PolicyOptions[P], SuppliedByRuntime> &
  (P extends 'semanticache'
    ? {
        /** Delimiter set; default: built from the model's tokenizer at `delimiterLevel`. */
        delimiters?: DelimiterSet;
        /** Default 'sentence'. */
        delimiterLevel?: DelimiterLevel;
      }
    : unknown);

/** A cache policy: which `compress` policy, how much to keep, and its knobs. */
export type CachePolicy = {
  [P in PolicyName]: { name: P; budget?: Budget; options?: PolicyKnobs<P> };
}[PolicyName];

/**
 * When the session compresses: `'prefill'` once after every prefill (the prompt), `'manual'` only on
 * `session.compress()`, or `{ maxEntries, targetEntries? }` whenever a head outgrows maxEntries (after prefill and
 * during decode), back down to targetEntries (default ¾ of maxEntries).
 */
export type CompressTrigger = 'prefill' | 'manual' | DecodeTrigger;

/** What a policy reads besides the cache: attention-mass tables, token ids. */
export function policyReads(policy: CachePolicy): PolicyNeeds {
  return policyNeeds(policy.name, (policy.options ?? {}) as never);
}

/** Whether the policy's budget applies (not for full, nor for semanticache with a fixed τ, which replaces it). */
export function usesBudget(policy: CachePolicy): boolean {
  return policyUsesBudget(policy.name, (policy.options ?? {}) as never);
}

export function checkPolicy(policy: unknown, name = 'policy'): CachePolicy {
  if (policy === null || typeof policy !== 'object')
    throw new TypeError(`${name}: expected { name, budget?, options? }`);
  const p = policy as CachePolicy;
  if (!POLICIES.includes(p.name)) {
    throw new TypeError(`${name}.name: expected one of ${POLICIES.join(', ')}, got ${String(p.name)}`);
  }
  if (p.budget !== undefined) {
    try {
      checkBudget(p.budget);
    } catch (err) {
      if (err instanceof Error) err.message = `${name}.${err.message}`;
      throw err;
    }
  }
  if (p.options !== undefined && (p.options === null || typeof p.options !== 'object')) {
    throw new TypeError(`${name}.options: expected an object`);
  }
  const { delimiterLevel, delimiters, ...knobs } = (p.options ?? {}) as Record<string, unknown>;
  for (const key of SUPPLIED_BY_RUNTIME) {
    if (key in knobs) {
      throw new TypeError(
        key === 'budget'
          ? `${name}.options.budget: give the budget as ${name}.budget`
          : `${name}.options.${key}: the session supplies it`,
      );
    }
  }
  if (!policyNeeds(p.name).tokens && (delimiterLevel !== undefined || delimiters !== undefined)) {
    const key = delimiterLevel !== undefined ? 'delimiterLevel' : 'delimiters';
    throw new TypeError(`${name}.options.${key}: not an option of policy '${p.name}'`);
  }
  if (delimiterLevel !== undefined && delimiterLevel !== 'sentence' && delimiterLevel !== 'clause') {
    throw new TypeError(
      `${name}.options.delimiterLevel: expected 'sentence' or 'clause', got ${String(delimiterLevel)}`,
    );
  }
  try {
    checkPolicyOptions(p.name, { ...knobs, ...(delimiters === undefined ? {} : { delimiters }) } as never);
  } catch (err) {
    // name the option where the caller wrote it
    if (err instanceof Error) err.message = `${name}.options.${err.message}`;
    throw err;
  }
  return p;
}

export function checkTrigger(trigger: unknown): CompressTrigger {
  if (trigger === 'prefill' || trigger === 'manual') return trigger;
  if (trigger !== null && typeof trigger === 'object') {
    const t = trigger as DecodeTrigger;
    if (!Number.isInteger(t.maxEntries) || t.maxEntries < 1) {
      throw new RangeError(`compressTrigger.maxEntries: expected a positive integer, got ${String(t.maxEntries)}`);
    }
    return t;
  }
  throw new TypeError(`compressTrigger: expected 'prefill', 'manual' or { maxEntries }, got ${String(trigger)}`);
}
