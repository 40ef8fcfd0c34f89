import { chunk, type DelimiterSet } from '@semanticache/chunker';
import type { CompareTo, SeedOrder } from '@semanticache/gsc-cluster';
import type { PositionMode } from '@semanticache/merge';
import {
  type Budget,
  checkBudget,
  checkImportance,
  checkNonNegativeInteger,
  type HeadPlan,
  type Importance,
  type ProtectionOptions,
  planHeads,
} from './plan.js';
import {
  chunkKv,
  DEFAULT_CHUNK_LENGTH,
  DEFAULT_POOL_KERNEL,
  DEFAULT_POOLING,
  type Pooling,
  scoreTopK,
  streamingLlm,
} from './policies/eviction.js';
import { identityRemap } from './policies/head-writer.js';
import { mergeValues } from './policies/merge-values.js';
import { chunkStarts, entryChunkOffsets, type SemanticacheSettings, semanticache } from './policies/semanticache.js';
import {
  resolveSemanticacheKnobs,
  SEMANTICACHE_KNOB_NAMES,
  SEMANTICACHE_PRESETS,
  type SemanticacheKnobs,
  type SemanticachePreset,
} from './policies/semanticache-presets.js';
import { type SeededSettings, semanticacheSeeded } from './policies/semanticache-seeded.js';
import type { KVCache } from './store.js';

export const POLICIES = ['full', 'streaming-llm', 'snapkv', 'h2o', 'chunkkv', 'merge-values', 'semanticache'] as const;
export type PolicyName = (typeof POLICIES)[number];

interface BudgetedOptions extends ProtectionOptions {
  budget: Budget;
}

interface PooledScoreOptions {
  /** 'max' (default), 'avg' (kvpress) or 'none' */
  pooling?: Pooling;
  /** odd pooling width, default 7 */
  poolKernel?: number;
}

export interface SemanticacheOptions extends ProtectionOptions, Partial<SemanticacheKnobs>, PooledScoreOptions {
  /**
   * Named settings (SEMANTICACHE_PRESETS), default 'default': importance-seeded cores; 'paper' for the paper's
   * position-ordered GSC over every token. Options given beside a preset override its settings.
   */
  preset?: SemanticachePreset;
  /** required unless `threshold` is given: then τ alone decides how much is merged */
  budget?: Budget;
  /** token id of every appended token, in append order (length ≥ cache.tokensSeen) */
  tokenIds: ArrayLike<number>;
  /** delimiter set of the tokenizer (chunker's delimitersFromTokenizerJson / delimitersFromVocabulary) */
  delimiters: DelimiterSet;
  /** chunker bounds (chunker defaults when left out) */
  minChunkLength?: number;
  maxChunkLength?: number;
  /** fixed cosine threshold τ instead of a budget */
  threshold?: number;
  /** GSC seed order (seeds 'gsc'), default 'position'; 'importance' needs windowImportance */
  seedOrder?: SeedOrder;
  /** GSC comparison (seeds 'gsc'), default 'seed' */
  compareTo?: CompareTo;
  /** a GSC core's position: 'mean' (default, size-weighted) or 'first'; importance-seeded cores take the seed's */
  positionMode?: PositionMode;
  /** bound on the τ search steps per head (gsc-cluster's default when left out) */
  maxSearchSteps?: number;
  windowImportance?: Importance;
}

/** Options of every policy. Importance tables are [layer][kvHead] Float32Arrays of each head's current length. */
export interface PolicyOptions {
  full: ProtectionOptions & { budget?: Budget };
  'streaming-llm': BudgetedOptions;
  snapkv: BudgetedOptions & PooledScoreOptions & { windowImportance: Importance };
  h2o: BudgetedOptions & { accumulatedImportance: Importance };
  chunkkv: BudgetedOptions & { windowImportance: Importance; chunkLength?: number };
  'merge-values': BudgetedOptions & PooledScoreOptions & { windowImportance: Importance };
  semanticache: SemanticacheOptions;
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
}

function countEntries(cache: KVCache): number {
  let total = 0;
  for (let l = 0; l < cache.numLayers; l++) for (let h = 0; h < cache.numKvHeads; h++) total += cache.length(l, h);
  return total;
}

function checkPooling(options: PooledScoreOptions): { pooling: Pooling; kernel: number } {
  const pooling = options.pooling ?? DEFAULT_POOLING;
  if (pooling !== 'max' && pooling !== 'avg' && pooling !== 'none') {
    throw new TypeError(`pooling: expected 'max', 'avg' or 'none', got ${String(pooling)}`);
  }
  const kernel = options.poolKernel ?? DEFAULT_POOL_KERNEL;
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) {
    throw new RangeError(`poolKernel: expected an odd positive integer, got ${String(kernel)}`);
  }
  return { pooling, kernel };
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw new TypeError(`${name}: expected ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${String(value)}`);
  }
  return value as T;
}

/** A join threshold: a cosine ≥ -1; above 1 nothing joins. */
function checkCosine(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= -1)) {
    throw new RangeError(`${name}: expected a cosine ≥ -1 (above 1: nothing joins), got ${String(value)}`);
  }
  return value;
}

function checkMassCap(value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0)) {
    throw new RangeError(`memberMassCap: expected a number ≥ 0 (Infinity: any member joins), got ${String(value)}`);
  }
  return value;
}

function checkCount(name: string, value: unknown, fallback: number): number {
  const count = checkNonNegativeInteger(name, value, fallback);
  if (count < 1) throw new RangeError(`${name}: expected a positive integer, got 0`);
  return count;
}

type ResolvedSemanticache =
  | { seeds: 'gsc'; settings: Omit<SemanticacheSettings, 'delimiters'> }
  | { seeds: 'importance'; settings: SeededSettings };

/** Inputs a caller collects for a compression; every policy accepts them and reads those it needs. */
const INPUT_KEYS = ['budget', 'tokenIds', 'delimiters', 'windowImportance', 'accumulatedImportance'] as const;
const PROTECTION_KEYS = ['sinkTokens', 'recentWindow'] as const;
const POOLING_KEYS = ['pooling', 'poolKernel'] as const;

/** Knobs each policy takes besides the inputs and the protection options. */
const POLICY_KNOBS: Record<PolicyName, readonly string[]> = {
  full: [],
  'streaming-llm': [],
  snapkv: POOLING_KEYS,
  h2o: [],
  chunkkv: ['chunkLength'],
  'merge-values': POOLING_KEYS,
  semanticache: [
    'preset',
    ...SEMANTICACHE_KNOB_NAMES,
    ...POOLING_KEYS,
    'minChunkLength',
    'maxChunkLength',
    'threshold',
    'seedOrder',
    'compareTo',
    'positionMode',
    'maxSearchSteps',
  ],
};

/** A policy's options, checked without a cache. */
interface CheckedOptions {
  budget: Budget | undefined;
  pooling: Pooling;
  poolKernel: number;
  chunkLength: number;
  semanticache?: ResolvedSemanticache;
}

const NO_DELIMITERS: DelimiterSet = {
  level: 'custom',
  vocabSize: 0,
  isDelimiter: new Uint8Array(0),
  flags: new Uint8Array(0),
};

function resolveSemanticache(options: SemanticacheOptions): ResolvedSemanticache {
  const { threshold, delimiters } = options;
  if (delimiters !== undefined) {
    if (delimiters === null || typeof delimiters !== 'object' || !(delimiters.flags instanceof Uint8Array)) {
      throw new TypeError('delimiters: expected a DelimiterSet from @semanticache/chunker');
    }
  }
  try {
    // the chunker's own rules for its bounds, on no tokens
    chunk([], NO_DELIMITERS, { minLength: options.minChunkLength, maxLength: options.maxChunkLength });
  } catch (err) {
    if (err instanceof Error) err.message = `minChunkLength, maxChunkLength: ${err.message}`;
    throw err;
  }
  if (threshold !== undefined && !(typeof threshold === 'number' && threshold >= -1 && threshold <= 1)) {
    throw new RangeError(`threshold: expected a cosine in [-1, 1], got ${String(threshold)}`);
  }
  oneOf<SemanticachePreset>('preset', options.preset, SEMANTICACHE_PRESETS, 'default');
  const knobs = resolveSemanticacheKnobs(options as unknown as Record<string, unknown>) as SemanticacheKnobs & {
    preset: SemanticachePreset;
  };
  const seeds = oneOf('seeds', knobs.seeds, ['importance', 'gsc'] as const, 'importance');
  const coreWeights = oneOf('coreWeights', knobs.coreWeights, ['size', 'importance'] as const, 'importance');
  if (seeds === 'importance') {
    if (threshold !== undefined) throw new TypeError("threshold: a fixed τ needs seeds 'gsc'");
    const { pooling, kernel } = checkPooling(options);
    return {
      seeds,
      settings: {
        pooling,
        poolKernel: kernel,
        joinThreshold: checkCosine('joinThreshold', knobs.joinThreshold),
        joinScope: oneOf('joinScope', knobs.joinScope, ['chunk-first', 'nearby'] as const, 'chunk-first'),
        joinRadius: checkNonNegativeInteger('joinRadius', knobs.joinRadius, 0),
        nearbyThreshold: checkCosine('nearbyThreshold', knobs.nearbyThreshold),
        memberMassCap: checkMassCap(knobs.memberMassCap),
        coreKey: oneOf('coreKey', knobs.coreKey, ['seed', 'mean'] as const, 'seed'),
        coreBias: oneOf('coreBias', knobs.coreBias, ['mass', 'size', 'none'] as const, 'mass'),
        coreWeights,
        headBudgets: oneOf('headBudgets', knobs.headBudgets, ['adaptive', 'uniform'] as const, 'uniform'),
      },
    };
  }
  return {
    seeds,
    settings: {
      minChunkLength: options.minChunkLength,
      maxChunkLength: options.maxChunkLength,
      threshold,
      seedOrder: oneOf<SeedOrder>('seedOrder', options.seedOrder, ['position', 'importance'], 'position'),
      compareTo: oneOf<CompareTo>('compareTo', options.compareTo, ['seed', 'centroid'], 'seed'),
      positionMode: oneOf<PositionMode>('positionMode', options.positionMode, ['mean', 'first'], 'mean'),
      coreWeights,
      maxSearchSteps:
        options.maxSearchSteps === undefined ? undefined : checkCount('maxSearchSteps', options.maxSearchSteps, 1),
    },
  };
}

/**
 * Checks a policy's options without a cache — every knob's value, and that no option is unknown (a misspelt knob
 * is an error, not a silent default) — so that a caller can reject them before any work. `compress` runs it first.
 */
export function checkPolicyOptions<P extends PolicyName>(policy: P, options: Partial<PolicyOptions[P]>): void {
  checkOptions(policy, options);
}

function checkOptions(policy: PolicyName, options: unknown): CheckedOptions {
  if (!POLICIES.includes(policy)) {
    throw new TypeError(`policy: unknown '${String(policy)}'; expected one of ${POLICIES.join(', ')}`);
  }
  if (options === null || typeof options !== 'object') throw new TypeError('options: expected an object');
  const known = [...INPUT_KEYS, ...PROTECTION_KEYS, ...POLICY_KNOBS[policy]];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(
        `${key}: not an option of policy '${policy}' (it takes ${[...PROTECTION_KEYS, ...POLICY_KNOBS[policy]].join(', ')})`,
      );
    }
  }
  const raw = options as Partial<SemanticacheOptions> & { chunkLength?: number };
  checkNonNegativeInteger('sinkTokens', raw.sinkTokens, 0);
  checkNonNegativeInteger('recentWindow', raw.recentWindow, 0);
  const { pooling, kernel } = checkPooling(raw);
  return {
    budget: raw.budget === undefined ? undefined : checkBudget(raw.budget),
    pooling,
    poolKernel: kernel,
    chunkLength: checkCount('chunkLength', raw.chunkLength, DEFAULT_CHUNK_LENGTH),
    semanticache: policy === 'semanticache' ? resolveSemanticache(raw as SemanticacheOptions) : undefined,
  };
}

/**
 * Compresses every layer × KV head of `cache` in place with one policy. All inputs are checked before anything
 * changes. A budget is a ceiling: heads whose protected entries exceed it keep them (`headsAboveBudget`).
 */
export function compress<P extends PolicyName>(
  cache: KVCache,
  policy: P,
  options: PolicyOptions[P],
): CompressionResult {
  const checked = checkOptions(policy, options);
  const entriesBefore = countEntries(cache);
  const raw = options as Partial<PolicyOptions['semanticache']> &
    Partial<PolicyOptions['snapkv']> &
    Partial<PolicyOptions['h2o']> &
    Partial<PolicyOptions['chunkkv']>;
  const { budget } = checked;
  if (budget === undefined && policy !== 'full' && policy !== 'semanticache') checkBudget(budget);

  let run: (layer: number, plans: HeadPlan[]) => Int32Array[];
  switch (policy) {
    case 'full':
      run = (_, plans) => plans.map((p) => identityRemap(p.length));
      break;
    case 'streaming-llm':
      run = (layer, plans) => streamingLlm(cache, layer, plans);
      break;
    case 'snapkv':
    case 'merge-values': {
      const importance = checkImportance('windowImportance', raw.windowImportance, cache, policy);
      const impl = policy === 'snapkv' ? scoreTopK : mergeValues;
      run = (layer, plans) => impl(cache, layer, plans, importance, checked.pooling, checked.poolKernel);
      break;
    }
    case 'h2o': {
      const importance = checkImportance('accumulatedImportance', raw.accumulatedImportance, cache, policy);
      run = (layer, plans) => scoreTopK(cache, layer, plans, importance, 'none', 1);
      break;
    }
    case 'chunkkv': {
      const importance = checkImportance('windowImportance', raw.windowImportance, cache, policy);
      run = (layer, plans) => chunkKv(cache, layer, plans, importance, checked.chunkLength);
      break;
    }
    default: {
      const opts = raw as SemanticacheOptions;
      const resolved = checked.semanticache as ResolvedSemanticache;
      const { tokenIds, delimiters, threshold } = opts;
      if (tokenIds === null || typeof tokenIds !== 'object' || typeof tokenIds.length !== 'number') {
        throw new TypeError('tokenIds: expected an array or typed array of the appended token ids');
      }
      if (tokenIds.length < cache.tokensSeen) {
        throw new RangeError(`tokenIds: ${tokenIds.length} ids for ${cache.tokensSeen} appended tokens`);
      }
      if (delimiters === undefined)
        throw new TypeError('delimiters: expected a DelimiterSet from @semanticache/chunker');
      if (threshold !== undefined && budget !== undefined) {
        throw new TypeError('semanticache: give either budget or threshold, not both');
      }
      if (threshold === undefined && budget === undefined) {
        throw new TypeError('semanticache: budget (or a fixed threshold) is required');
      }
      const preset = opts.preset ?? (threshold !== undefined ? 'paper' : 'default');
      if (resolved.seeds === 'importance') {
        checkImportance('windowImportance', opts.windowImportance, cache, `semanticache (preset '${preset}')`);
      } else if (resolved.settings.seedOrder === 'importance' || resolved.settings.coreWeights === 'importance') {
        checkImportance('windowImportance', opts.windowImportance, cache, 'semanticache');
      }
      const chunking = {
        delimiters,
        minChunkLength: opts.minChunkLength,
        maxChunkLength: opts.maxChunkLength,
      };
      const startsByTokens = new Map<number, Uint32Array>();
      const startsFor = (layer: number) => {
        const tokens = cache.appendedTokens(layer);
        let starts = startsByTokens.get(tokens);
        if (!starts) {
          starts = chunkStarts(tokenIds, tokens, chunking);
          startsByTokens.set(tokens, starts);
        }
        return starts;
      };
      if (resolved.seeds === 'gsc') {
        const importance = opts.windowImportance;
        const settings = { ...resolved.settings, delimiters };
        run = (layer, plans) => semanticache(cache, layer, plans, startsFor(layer), settings, importance);
      } else {
        const importance = opts.windowImportance as Importance;
        // an entry cap is a per-head bound (decode triggers test each head against it): heads cannot trade seats
        const settings =
          budget !== undefined && 'maxEntries' in budget
            ? { ...resolved.settings, headBudgets: 'uniform' as const }
            : resolved.settings;
        run = (layer, plans) => {
          const starts = startsFor(layer);
          const offsets = (h: number) =>
            entryChunkOffsets(cache.head(layer, h).origins.subarray(plans[h].sinkEnd, plans[h].windowStart), starts);
          return semanticacheSeeded(cache, layer, plans, offsets, settings, importance);
        };
      }
    }
  }

  // full is the uncompressed reference: a budget given to it is checked but not applied; merging policies keep at
  // least one compressible entry to merge into
  const merging = policy === 'semanticache' || policy === 'merge-values';
  const plans = planHeads(cache, policy === 'full' ? undefined : budget, options, merging ? 1 : 0);
  const remap = plans.map((layerPlans, layer) => run(layer, layerPlans));
  const headsAboveBudget = plans.reduce((n, layerPlans) => n + layerPlans.filter((p) => p.aboveBudget).length, 0);
  return { policy, entriesBefore, entriesAfter: countEntries(cache), headsAboveBudget, remap };
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
