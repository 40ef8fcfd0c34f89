import type { ProtectionOptions } from './plan.js';
import { type Budget, checkBudget, checkNonNegativeInteger, type Importance, planHeads } from './plan.js';
import { INPUT_KEYS, type LayerTrace, type PolicyDefinition, type PolicyNeeds } from './policies/policy.js';
import { type PolicyName, type PolicyOptions, policyDefinition } from './registry.js';
import type { KVCache } from './store.js';

const PROTECTION_KEYS = ['sinkTokens', 'recentWindow'] as const satisfies readonly (keyof ProtectionOptions)[];

/** Options of `compress` that every policy takes beside its own. */
export interface CompressOptions {
  /** also return what the compression did per head (`CompressionResult.trace`); off, nothing is recorded */
  trace?: boolean;
}
const COMPRESS_KEYS = ['trace'] as const satisfies readonly (keyof CompressOptions)[];

/** What a compression did, per layer, beyond its remap: the chunks a policy cut and which entries went together. */
export interface CompressionTrace {
  layers: LayerTrace[];
}

export interface CompressionResult {
  policy: PolicyName;
  entriesBefore: number;
  entriesAfter: number;
  /** Heads (layer × KV head) whose budget was below their protected entries: they kept those and compressed less. */
  headsAboveBudget: number;
  /**
   * [layer][kvHead]: for every entry before compression, the index of the entry that now holds it (itself, the core
   * it merged into, or the value-merge target), or -1 when evicted. Use it to carry accumulated mass forward.
   */
  remap: Int32Array[][];
  /** only when asked for with `trace: true` */
  trace?: CompressionTrace;
}

function countEntries(cache: KVCache): number {
  let total = 0;
  for (let l = 0; l < cache.numLayers; l++) for (let h = 0; h < cache.numKvHeads; h++) total += cache.length(l, h);
  return total;
}

/** The policy's definition and checked settings; unknown option names and bad values throw, naming the option. */
function checkOptions(
  policy: string,
  options: unknown,
): { definition: PolicyDefinition<string, object, unknown>; settings: unknown; budget: Budget | undefined } {
  const definition = policyDefinition(policy);
  if (options === null || typeof options !== 'object') throw new TypeError('options: expected an object');
  const known: readonly string[] = [...INPUT_KEYS, ...COMPRESS_KEYS, ...PROTECTION_KEYS, ...definition.knobs];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(
        `${key}: not an option of policy '${policy}' (it takes ${[...PROTECTION_KEYS, ...definition.knobs].join(', ')})`,
      );
    }
  }
  const raw = options as ProtectionOptions & { budget?: unknown; trace?: unknown };
  if (raw.trace !== undefined && typeof raw.trace !== 'boolean') {
    throw new TypeError(`trace: expected a boolean, got ${String(raw.trace)}`);
  }
  checkNonNegativeInteger('sinkTokens', raw.sinkTokens, 0);
  checkNonNegativeInteger('recentWindow', raw.recentWindow, 0);
  const budget = raw.budget === undefined ? undefined : checkBudget(raw.budget);
  return { definition, settings: definition.check(options), budget };
}

/**
 * Checks a policy's options without a cache — every knob's value, and that no option is unknown (a misspelt knob
 * is an error, not a silent default) — so that a caller can reject them before any work. `compress` runs it first.
 */
export function checkPolicyOptions<P extends PolicyName>(
  policy: P,
  options: Partial<PolicyOptions[P]> & CompressOptions,
): void {
  checkOptions(policy, options);
}

/** What `policy` reads under `options` besides the cache (attention mass, token ids). */
export function policyNeeds<P extends PolicyName>(policy: P, options: Partial<PolicyOptions[P]> = {}): PolicyNeeds {
  return policyDefinition(policy).needs(options);
}

/** Whether a budget applies to `policy` under `options` (not for full, nor for semanticache with a fixed τ). */
export function policyUsesBudget<P extends PolicyName>(policy: P, options: Partial<PolicyOptions[P]> = {}): boolean {
  return policyDefinition(policy).usesBudget(options);
}

/**
 * Compresses every layer × KV head of `cache` in place with one policy. All inputs are checked before anything
 * changes. A budget is a ceiling: heads whose protected entries exceed it keep them (`headsAboveBudget`). With
 * `trace: true` the result also says which chunks the policy used and which entries went together (`trace`).
 */
export function compress<P extends PolicyName>(
  cache: KVCache,
  policy: P,
  options: PolicyOptions[P] & CompressOptions,
): CompressionResult {
  const { definition, settings, budget } = checkOptions(policy, options);
  const usesBudget = definition.usesBudget(options);
  if (usesBudget && budget === undefined) {
    throw new TypeError(
      `budget: policy '${policy}' needs { ratio } or { maxEntries }${policy === 'semanticache' ? ' (or a fixed threshold)' : ''}`,
    );
  }
  const entriesBefore = countEntries(cache);
  const run = definition.compressor(cache, options, settings, budget);
  const plans = planHeads(
    cache,
    usesBudget ? budget : undefined,
    options as ProtectionOptions,
    definition.minKeepMiddle,
  );
  // recorded only on request: an untraced compression allocates nothing for it
  const trace: CompressionTrace | undefined = options.trace
    ? {
        layers: plans.map((layerPlans) => ({
          heads: layerPlans.map(({ length, sinkEnd, windowStart }) => ({ length, sinkEnd, windowStart })),
        })),
      }
    : undefined;
  const remap = plans.map((layerPlans, layer) => run(layer, layerPlans, trace?.layers[layer]));
  const headsAboveBudget = plans.reduce((n, layerPlans) => n + layerPlans.filter((p) => p.aboveBudget).length, 0);
  const result: CompressionResult = {
    policy,
    entriesBefore,
    entriesAfter: countEntries(cache),
    headsAboveBudget,
    remap,
  };
  if (trace) result.trace = trace;
  return result;
}

/**
 * Carries per-entry mass (e.g. H2O's accumulated attention) across a compression: entries that merged add up,
 * evicted entries drop out. Returns a new [layer][kvHead] table matching the compressed cache.
 */
export function remapImportance(importance: Importance, result: CompressionResult, cache: KVCache): Importance {
  return result.remap.map((heads, l) =>
    heads.map((map, h) => {
      const out = new Float32Array(cache.length(l, h));
      const before = importance[l]?.[h];
      if (!(before instanceof Float32Array) || before.length !== map.length) {
        throw new RangeError(`importance[${l}][${h}]: expected ${map.length} entries (the head before compression)`);
      }
      for (let i = 0; i < map.length; i++) if (map[i] >= 0) out[map[i]] += before[i];
      return out;
    }),
  );
}
