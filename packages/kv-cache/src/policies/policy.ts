import type { DelimiterSet } from '@semanticache/chunker';
import {
  type Budget,
  checkNonNegativeInteger,
  type HeadPlan,
  type Importance,
  type ProtectionOptions,
} from '../plan.js';
import type { KVCache } from '../store.js';
import { identityRemap, keepEntries, topIndices } from './head-writer.js';

/**
 * Compresses the heads of one layer per their plans; returns each head's old → new entry map (−1: evicted). `trace`
 * is given only when the caller asked for one: a policy that chunks or groups entries records what it used there.
 */
export type LayerCompressor = (layer: number, plans: HeadPlan[], trace?: LayerTrace) => Int32Array[];

/** What a compression did in one head, beyond its remap (`compress(…, { trace: true })`). */
export interface HeadTrace {
  /** the head's layout before compression: entries [0, sinkEnd) and [windowStart, length) were protected */
  length: number;
  sinkEnd: number;
  windowStart: number;
  /**
   * The chunks the policy worked in, as offsets into the compressible entries (entry − sinkEnd; first 0, last
   * windowStart − sinkEnd): semanticache's semantic chunks (joined where a budget asked for fewer cores than chunks),
   * chunkkv's fixed-length chunks. Absent for policies that do not chunk and for heads left as they were.
   */
  chunks?: Uint32Array;
  /**
   * Per compressible entry (entry − sinkEnd): the cluster or core it went into (ids dense from 0), −1 when it was
   * dropped. Absent for policies that do not group entries and for heads left as they were.
   */
  assignment?: Int32Array;
}

/** What a compression did in one layer. */
export interface LayerTrace {
  /** the token chunks (chunker offsets over every appended token) a semantic-chunking policy cut the stream into */
  tokenChunks?: Uint32Array;
  heads: HeadTrace[];
}

/**
 * What a policy reads besides the cache: the observation window's attention mass, the mass of every query so far,
 * and the token ids with the tokenizer's delimiters (to cut semantic chunks).
 */
export interface PolicyNeeds {
  window: boolean;
  accumulated: boolean;
  tokens: boolean;
}

/** Inputs a caller collects for a compression; every policy accepts them and reads those it needs. */
export interface PolicyInputs {
  budget?: Budget;
  /** token id of every appended token, in append order (length ≥ cache.tokensSeen) */
  tokenIds?: ArrayLike<number>;
  /** delimiter set of the tokenizer (chunker's delimitersFromTokenizerJson / delimitersFromVocabulary) */
  delimiters?: DelimiterSet;
  windowImportance?: Importance;
  accumulatedImportance?: Importance;
}
export const INPUT_KEYS = ['budget', 'tokenIds', 'delimiters', 'windowImportance', 'accumulatedImportance'] as const;

/**
 * A cache policy: its name, the knobs it takes beside the inputs and the protection options, what it reads, how it
 * checks its knobs (without a cache) and how it compresses a layer. One file per policy; `registry.ts` lists them.
 */
export interface PolicyDefinition<Name extends string = string, Options extends object = object, Settings = unknown> {
  readonly name: Name;
  readonly knobs: readonly string[];
  /** compressible entries a head keeps even above its budget (a merging policy needs one to merge into) */
  readonly minKeepMiddle: number;
  /** whether the budget applies (full: checked, never applied; semanticache: not with a fixed τ) */
  usesBudget(options: Partial<Options>): boolean;
  needs(options: Partial<Options>): PolicyNeeds;
  /** checks the knobs' values; throws TypeError / RangeError naming the knob */
  check(options: Partial<Options>): Settings;
  /** checks the inputs against `cache`; returns the per-layer compression */
  compressor(cache: KVCache, options: Options, settings: Settings, budget: Budget | undefined): LayerCompressor;
  /** never set: carries the options type to PolicyOptions */
  readonly optionsType?: Options;
}

/** Options of a policy that removes entries to a budget. */
export interface BudgetedOptions extends ProtectionOptions {
  budget: Budget;
}

export const READS_NOTHING: PolicyNeeds = { window: false, accumulated: false, tokens: false };

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw new TypeError(`${name}: expected ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${String(value)}`);
  }
  return value as T;
}

export function checkCount(name: string, value: unknown, fallback: number): number {
  const count = checkNonNegativeInteger(name, value, fallback);
  if (count < 1) throw new RangeError(`${name}: expected a positive integer, got 0`);
  return count;
}

/**
 * The score-then-keep base (kvpress's ScorerPress): a policy gives a score per compressible entry of a head and
 * each head keeps its `keepMiddle` highest, ties to the earlier entry.
 */
export function scorerPolicy<Name extends string, Options extends BudgetedOptions, Settings>(spec: {
  name: Name;
  knobs: readonly string[];
  needs: PolicyNeeds;
  check(options: Partial<Options>): Settings;
  /** checks the inputs; returns the score of every entry of a head (only the compressible span is read) */
  scores(cache: KVCache, options: Options, settings: Settings): (layer: number, head: number) => Float32Array;
}): PolicyDefinition<Name, Options, Settings> {
  return {
    name: spec.name,
    knobs: spec.knobs,
    minKeepMiddle: 0,
    usesBudget: () => true,
    needs: () => spec.needs,
    check: spec.check,
    compressor(cache, options, settings) {
      const score = spec.scores(cache, options, settings);
      return (layer, plans) =>
        plans.map((plan, h) =>
          plan.keepMiddle < 0
            ? identityRemap(plan.length)
            : keepEntries(
                cache,
                layer,
                h,
                plan,
                topIndices(score(layer, h), plan.sinkEnd, plan.windowStart, plan.keepMiddle),
              ),
        );
    },
  };
}
