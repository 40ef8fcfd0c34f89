import { chunk, type DelimiterSet } from '@semanticache/chunker';
import type { CompareTo, SeedOrder } from '@semanticache/gsc-cluster';
import type { PositionMode } from '@semanticache/merge';
import {
  type Budget,
  checkImportance,
  checkNonNegativeInteger,
  type Importance,
  type ProtectionOptions,
} from '../plan.js';
import { checkCount, oneOf, type PolicyDefinition, type PolicyNeeds } from './policy.js';
import { checkPooling, POOLING_KEYS, type PooledScoreOptions } from './pooling.js';
import { chunkStarts, entryChunkOffsets, type SemanticacheSettings, semanticacheGsc } from './semanticache-gsc.js';
import {
  resolveSemanticacheKnobs,
  SEMANTICACHE_KNOB_NAMES,
  SEMANTICACHE_PRESETS,
  type SemanticacheKnobs,
  type SemanticachePreset,
} from './semanticache-presets.js';
import { type SeededSettings, semanticacheSeeded } from './semanticache-seeded.js';

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

type ResolvedSemanticache =
  | { seeds: 'gsc'; settings: Omit<SemanticacheSettings, 'delimiters'> }
  | { seeds: 'importance'; settings: SeededSettings };

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

const NO_DELIMITERS: DelimiterSet = {
  level: 'custom',
  vocabSize: 0,
  isDelimiter: new Uint8Array(0),
  flags: new Uint8Array(0),
};

function resolve(options: Partial<SemanticacheOptions>): ResolvedSemanticache {
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
  const knobs = resolveSemanticacheKnobs(options as Record<string, unknown>) as SemanticacheKnobs & {
    preset: SemanticachePreset;
  };
  const seeds = oneOf('seeds', knobs.seeds, ['importance', 'gsc'] as const, 'importance');
  const coreWeights = oneOf('coreWeights', knobs.coreWeights, ['size', 'importance'] as const, 'importance');
  if (seeds === 'importance') {
    if (threshold !== undefined) throw new TypeError("threshold: a fixed τ needs seeds 'gsc'");
    const { pooling, size } = checkPooling(options);
    return {
      seeds,
      settings: {
        pooling,
        poolSize: size,
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

/** Whether these options read observation-window mass (their preset's settings, then overrides). */
function needs(options: Partial<SemanticacheOptions>): PolicyNeeds {
  const knobs = resolveSemanticacheKnobs(options as Record<string, unknown>);
  // an unknown preset reads nothing here; `check` rejects it with its name
  const window =
    knobs !== undefined &&
    (knobs.seeds === 'importance' || options.seedOrder === 'importance' || knobs.coreWeights === 'importance');
  return { window, accumulated: false, tokens: true };
}

/**
 * SemantiCache: semantic chunks of the token stream; per head, cores seeded by the most-attended entries (default)
 * or GSC clusters of every entry (preset 'paper'), merged with a proportional-attention bias.
 */
export const semanticache: PolicyDefinition<'semanticache', SemanticacheOptions, ResolvedSemanticache> = {
  name: 'semanticache',
  knobs: [
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
  minKeepMiddle: 1,
  // a fixed τ replaces the budget
  usesBudget: (options) => options.threshold === undefined,
  needs,
  check: resolve,
  compressor(cache, options, resolved, budget) {
    const { tokenIds, delimiters, threshold } = options;
    if (tokenIds === null || typeof tokenIds !== 'object' || typeof tokenIds.length !== 'number') {
      throw new TypeError('tokenIds: expected an array or typed array of the appended token ids');
    }
    if (tokenIds.length < cache.tokensSeen) {
      throw new RangeError(`tokenIds: ${tokenIds.length} ids for ${cache.tokensSeen} appended tokens`);
    }
    if (delimiters === undefined) throw new TypeError('delimiters: expected a DelimiterSet from @semanticache/chunker');
    if (threshold !== undefined && options.budget !== undefined) {
      throw new TypeError('semanticache: give either budget or threshold, not both');
    }
    // the same rule that tells a session to collect the mass
    if (needs(options).window) {
      const preset = options.preset ?? (threshold !== undefined ? 'paper' : 'default');
      const label = resolved.seeds === 'importance' ? `semanticache (preset '${preset}')` : 'semanticache';
      checkImportance('windowImportance', options.windowImportance, cache, label);
    }
    const chunking = { delimiters, minChunkLength: options.minChunkLength, maxChunkLength: options.maxChunkLength };
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
      const settings = { ...resolved.settings, delimiters };
      return (layer, plans, trace) => {
        const starts = startsFor(layer);
        if (trace) trace.tokenChunks = starts;
        return semanticacheGsc(cache, layer, plans, starts, settings, options.windowImportance, trace);
      };
    }
    const importance = options.windowImportance as Importance;
    // an entry cap is a per-head bound (decode triggers test each head against it): heads cannot trade seats
    const settings =
      budget !== undefined && 'maxEntries' in budget
        ? { ...resolved.settings, headBudgets: 'uniform' as const }
        : resolved.settings;
    return (layer, plans, trace) => {
      const starts = startsFor(layer);
      if (trace) trace.tokenChunks = starts;
      const offsets = (h: number) =>
        entryChunkOffsets(cache.head(layer, h).origins.subarray(plans[h].sinkEnd, plans[h].windowStart), starts);
      return semanticacheSeeded(cache, layer, plans, offsets, settings, importance, trace);
    };
  },
};
