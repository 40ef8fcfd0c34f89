/**
 * Named settings of the semanticache policy. `default` is what `semanticache` means when no preset is named;
 * `paper` is the literal reconstruction of the paper (position-ordered GSC over every compressible token, size-weighted
 * mean cores, ln(size) bias). Each other preset changes one ingredient of `default`, so that an evaluation shows what
 * that ingredient earns (docs/results.md, "Ablation").
 */
export const SEMANTICACHE_PRESETS = [
  'default',
  'paper',
  'paper-importance',
  'no-merge',
  'adaptive-heads',
  'chunk-only',
  'nearby',
  'size-bias',
  'mean-key',
  'size-weights',
  'uncapped',
] as const;
export type SemanticachePreset = (typeof SEMANTICACHE_PRESETS)[number];

export interface SemanticacheKnobs {
  /** 'importance': the budget's worth of most-attended entries seed the cores; 'gsc': GSC clusters every entry */
  seeds: 'importance' | 'gsc';
  /** importance seeds: cosine a member needs with a seed to join it (above 1: nothing joins, SnapKV's eviction) */
  joinThreshold: number;
  /** importance seeds: cosine a member needs with a seed outside its own chunk (a member of a seedless chunk) */
  nearbyThreshold: number;
  /**
   * importance seeds: a member joins only if its window mass is at most this multiple of its seed's; a heavier one
   * is dropped rather than blended into a core that its seed's key addresses (Infinity: any member joins)
   */
  memberMassCap: number;
  /**
   * importance seeds: 'chunk-first' joins a seed of the member's own semantic chunk, and looks `joinRadius` seeds to
   * each side only when its chunk has none; 'nearby' always looks at its chunk's seeds and `joinRadius` on each side
   */
  joinScope: 'chunk-first' | 'nearby';
  joinRadius: number;
  /** importance seeds: a core keeps its seed's key, or takes the weighted mean of its members' keys */
  coreKey: 'seed' | 'mean';
  /** importance seeds: the logit bias of a core, from its members' window mass, from its size, or none */
  coreBias: 'mass' | 'size' | 'none';
  /** core means weighted by observation-window 'importance' or by 'size' */
  coreWeights: 'importance' | 'size';
  /** importance seeds, ratio budgets: 'adaptive' shares a layer's seats among its heads by mass (AdaKV) */
  headBudgets: 'adaptive' | 'uniform';
}

const DEFAULT_KNOBS: SemanticacheKnobs = {
  seeds: 'importance',
  joinThreshold: 0,
  nearbyThreshold: 0.5,
  memberMassCap: 1,
  joinScope: 'chunk-first',
  joinRadius: 8,
  coreKey: 'seed',
  coreBias: 'mass',
  coreWeights: 'importance',
  headBudgets: 'uniform',
};

/** Names of the knobs a preset sets (each may also be given on its own). */
export const SEMANTICACHE_KNOB_NAMES = Object.keys(DEFAULT_KNOBS) as readonly (keyof SemanticacheKnobs)[];

const PAPER_KNOBS: SemanticacheKnobs = { ...DEFAULT_KNOBS, seeds: 'gsc', coreWeights: 'size' };

export const SEMANTICACHE_PRESET_KNOBS: Record<SemanticachePreset, SemanticacheKnobs> = {
  default: DEFAULT_KNOBS,
  paper: PAPER_KNOBS,
  'paper-importance': { ...PAPER_KNOBS, coreWeights: 'importance' },
  'no-merge': { ...DEFAULT_KNOBS, joinThreshold: 2, nearbyThreshold: 2 },
  'adaptive-heads': { ...DEFAULT_KNOBS, headBudgets: 'adaptive' },
  'chunk-only': { ...DEFAULT_KNOBS, joinRadius: 0 },
  nearby: { ...DEFAULT_KNOBS, joinScope: 'nearby' },
  'size-bias': { ...DEFAULT_KNOBS, coreBias: 'size' },
  'mean-key': { ...DEFAULT_KNOBS, coreKey: 'mean' },
  'size-weights': { ...DEFAULT_KNOBS, coreWeights: 'size' },
  uncapped: { ...DEFAULT_KNOBS, memberMassCap: Number.POSITIVE_INFINITY },
};

/**
 * The settings a semanticache call runs with: its preset's (by default 'default', or 'paper' when a fixed τ is given,
 * since τ is a GSC threshold), then the knobs given beside it. Unknown presets come back as undefined.
 */
export function resolveSemanticacheKnobs(options: {
  preset?: unknown;
  threshold?: unknown;
  [knob: string]: unknown;
}): (SemanticacheKnobs & { preset: SemanticachePreset }) | undefined {
  const preset = (options.preset ?? (options.threshold !== undefined ? 'paper' : 'default')) as SemanticachePreset;
  if (!SEMANTICACHE_PRESETS.includes(preset)) return undefined;
  const knobs: Record<string, unknown> = { ...SEMANTICACHE_PRESET_KNOBS[preset], preset };
  for (const key of SEMANTICACHE_KNOB_NAMES) {
    if (options[key] !== undefined) knobs[key] = options[key];
  }
  return knobs as unknown as SemanticacheKnobs & { preset: SemanticachePreset };
}
