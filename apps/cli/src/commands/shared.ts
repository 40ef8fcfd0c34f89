import type { Budget, CacheStats, CompressionMap, Engine } from '@semanticache/eval';
import {
  DEFAULT_RECENT_WINDOW,
  DEFAULT_SINK_TOKENS,
  POLICIES,
  type PolicyName,
  targetEntries,
} from '@semanticache/kv-cache';
import { choice, numberOpt, type ParsedValues, stringOpt } from '../args.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { resolveModelLocation } from '../model-path.js';
import { Progress } from '../progress.js';

export const DEFAULT_RATIO = 0.75;

export function policyOpt(values: ParsedValues, fallback: PolicyName): PolicyName {
  const raw = stringOpt(values, 'policy', fallback);
  if (!(POLICIES as readonly string[]).includes(raw)) {
    throw new UsageError(`--policy: unknown policy '${raw}' (expected one of ${POLICIES.join(', ')})`);
  }
  return raw as PolicyName;
}

export function parseRatio(raw: string, label: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < 0 || v >= 1) {
    throw new UsageError(`${label}: a ratio is the fraction of entries removed, in [0, 1); got '${raw}'`);
  }
  return v;
}

export function budgetOpt(values: ParsedValues, fallbackRatio = DEFAULT_RATIO): Budget {
  const ratio = stringOpt(values, 'ratio');
  const maxEntries = stringOpt(values, 'max-entries');
  if (ratio !== undefined && maxEntries !== undefined) throw new UsageError('give --ratio or --max-entries, not both');
  if (maxEntries !== undefined) return { maxEntries: numberOpt(values, 'max-entries', 0, { min: 1, integer: true }) };
  return { ratio: ratio === undefined ? fallbackRatio : parseRatio(ratio, '--ratio') };
}

export function isQuiet(values: ParsedValues): boolean {
  return values.json === true || values.quiet === true;
}

/** Resolves --model/--tokenizer (usage errors first), then loads the model. */
export async function openEngine(ctx: CliContext, values: ParsedValues): Promise<Engine> {
  const location = resolveModelLocation(stringOpt(values, 'model'), stringOpt(values, 'tokenizer'), ctx.demoModelDir);
  const progress = new Progress(`loading ${location.label}`, 1, { stream: ctx.stderr, quiet: isQuiet(values) });
  const engine = await ctx.loadEngine(location, {
    threads: numberOpt(values, 'threads', 1, { min: 1, max: 256, integer: true }),
    kvDtype: choice(['float32', 'float16'] as const)(stringOpt(values, 'kv-dtype', 'float16'), '--kv-dtype'),
    weights: choice(['float32', 'int8', 'int4'] as const)(stringOpt(values, 'weights', 'float32'), '--weights'),
  });
  progress.finish(`loaded ${engine.numLayers} layers, ${engine.numKvHeads} KV heads × ${engine.headDim}`);
  return engine;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** The note for a compression whose budget was below the protected entries of some heads (undefined when none). */
export function aboveBudgetNote(
  map: Pick<CompressionMap, 'headsAboveBudget'> | undefined,
  heads: number,
): string | undefined {
  if (!map || map.headsAboveBudget === 0) return undefined;
  return `note: the budget is below the protected entries (${DEFAULT_SINK_TOKENS} sinks + ${DEFAULT_RECENT_WINDOW} recent tokens, and one core for merging policies) on ${map.headsAboveBudget} of ${heads} heads: they keep those and compress nothing else`;
}

/** A usage error when `ratio` would leave fewer entries than the policies protect at a context of `tokens`. */
export function checkRatioFits(tokens: number, ratio: number, what: string): void {
  const protectedTokens = DEFAULT_SINK_TOKENS + DEFAULT_RECENT_WINDOW;
  const kept = targetEntries(tokens, { ratio });
  if (kept < protectedTokens) {
    throw new UsageError(
      `${what}: removing ${ratio} of ${tokens} tokens keeps ${kept} entries, fewer than the ${protectedTokens} protected (${DEFAULT_SINK_TOKENS} sinks + ${DEFAULT_RECENT_WINDOW} recent); use a longer context or a smaller ratio`,
    );
  }
}

/** Cache stats for JSON output (typed arrays would serialize as objects). */
export function statsForJson(stats: CacheStats) {
  return { ...stats, entriesPerHead: Array.from(stats.entriesPerHead) };
}
