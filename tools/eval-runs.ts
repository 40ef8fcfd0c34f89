// Reads `semanticache eval` runs (DIR/eval.json) for the results tools, merging runs of the same windows or cases:
// perplexity runs of the same context, target and window count, decode runs of the same decode target, retrieval
// runs of the same query mode. A policy run later on its own thus joins baselines run before (windows are placed by
// their start, cases generated from their seed and index); a config in two runs counts from the later. A DIR written
// `DIR#OLD=NEW` reads that run's policy OLD as NEW (a run made before a default changed: `#semanticache=semanticache:uncapped`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Config {
  policy: string;
  preset?: string;
  ratio: number;
  label: string;
}
export interface PplRow {
  config: Config;
  windows: number;
  ppl: number;
  perWindow: { start: number; nll: number; tokens: number }[];
}
export interface RetrievalRow {
  config: Config;
  task: string;
  contextTokens: number;
  cases: number;
  passed: number;
  outcomes: { index: number; passed: boolean }[];
}
export interface EvalJson {
  settings: { context: number; target: number; decodeTarget?: number; windows: number; queryAware: boolean };
  perplexity: PplRow[];
  decodePerplexity?: PplRow[];
  retrieval: RetrievalRow[];
}

/** A config's name as the command line writes it: `snapkv`, `semanticache`, `semanticache:paper`. */
export const nameOf = (c: Config): string =>
  c.preset && c.preset !== 'default' ? `${c.policy}:${c.preset}` : c.policy;

const sameConfig = (a: { config: Config }, b: { config: Config }) =>
  nameOf(a.config) === nameOf(b.config) && a.config.ratio === b.config.ratio;

/** `old` without the rows `add` replaces, then `add`. */
function later<T>(old: T[], add: T[], same: (a: T, b: T) => boolean): T[] {
  return old.filter((a) => !add.some((b) => same(a, b))).concat(add);
}

/** Reads the run's configs named `OLD` (as `nameOf` writes them) as `NEW`, for `OLD=NEW`. */
function renamePolicy(r: EvalJson, rename: string): void {
  const [from, to] = rename.split('=');
  if (!from || !to) throw new Error(`expected DIR#OLD=NEW, got '#${rename}'`);
  const [policy, preset] = to.split(':');
  const configs = [...r.perplexity, ...(r.decodePerplexity ?? []), ...r.retrieval].map((x) => x.config);
  for (const c of new Set(configs)) {
    if (nameOf(c) !== from) continue;
    c.policy = policy;
    c.preset = preset;
    c.label = `${to}@${c.ratio}`;
  }
}

/** The runs in `dirs`, merged by what they measured, in the order given. */
export function loadRuns(dirs: string[]): EvalJson[] {
  const merged = new Map<string, EvalJson>();
  for (const arg of dirs) {
    const [dir, rename] = arg.split('#');
    const r = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as EvalJson;
    if (rename) renamePolicy(r, rename);
    const { context, target, decodeTarget, windows, queryAware } = r.settings;
    const parts: [string, EvalJson][] = [];
    if (r.perplexity.length) {
      parts.push([`ppl|${context}|${target}|${windows}`, { ...r, decodePerplexity: [], retrieval: [] }]);
    }
    if (r.decodePerplexity?.length) {
      parts.push([`decode|${context}|${decodeTarget}|${windows}`, { ...r, perplexity: [], retrieval: [] }]);
    }
    if (r.retrieval.length) parts.push([`retrieval|${queryAware}`, { ...r, perplexity: [], decodePerplexity: [] }]);
    for (const [key, part] of parts) {
      const into = merged.get(key);
      if (!into) {
        merged.set(key, part);
        continue;
      }
      into.perplexity = later(into.perplexity, part.perplexity, sameConfig);
      into.decodePerplexity = later(into.decodePerplexity ?? [], part.decodePerplexity ?? [], sameConfig);
      into.retrieval = later(
        into.retrieval,
        part.retrieval,
        (a, b) => sameConfig(a, b) && a.task === b.task && a.contextTokens === b.contextTokens,
      );
    }
  }
  return [...merged.values()];
}
