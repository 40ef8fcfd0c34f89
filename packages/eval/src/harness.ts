import type { Budget, Engine, EngineSession, PolicyName } from './engine.js';
import { checkContext } from './engine.js';
import { ownName, type SettingName, SettingsError } from './errors.js';
import { encodeLong } from './long-text.js';
import { parsePolicySpec, specKnobs, specName } from './policy-spec.js';
import {
  FillerSource,
  isCorrect,
  RETRIEVAL_TASKS,
  type RetrievalTaskName,
  randomDepth,
  retrievalCase,
} from './tasks.js';

export const PPL_TASKS = ['ppl', 'decode-ppl'] as const;
export type PplTask = (typeof PPL_TASKS)[number];
export const EVAL_TASKS = [...PPL_TASKS, ...RETRIEVAL_TASKS] as const;
export type EvalTask = (typeof EVAL_TASKS)[number];

export const isPplTask = (t: EvalTask): t is PplTask => (PPL_TASKS as readonly string[]).includes(t);
export const isRetrievalTask = (t: EvalTask): t is RetrievalTaskName => !isPplTask(t);

/** A retrieval depth as requested: a fixed fraction, or a fresh uniform one per case. */
export type DepthSpec = number | 'random';

export interface EvalSettings {
  tasks: EvalTask[];
  /** policy names as given: `snapkv`, `semanticache`, `semanticache:paper` */
  policies: string[];
  ratios: number[];
  context: number;
  target: number;
  /** decode-ppl: tokens scored after the compressed prefill */
  decodeTarget?: number;
  /** decode-ppl: growth past the budget that triggers a re-compression */
  decodeStep?: number;
  windows: number;
  lengths: number[];
  depths: DepthSpec[];
  cases: number;
  seed: number;
  queryAware: boolean;
  /** the policy name paired comparisons are made against; null when there is nothing to compare */
  reference?: string | null;
}

/** One policy (and preset) at one budget; 'full' appears once, with ratio 0. */
export interface Config {
  policy: PolicyName;
  /** semanticache preset; absent for the default one */
  preset?: string;
  ratio: number;
  /** `full`, `snapkv@0.75`, `semanticache:paper@0.75` */
  label: string;
}

/** One perplexity window under one config: what was scored, so any statistic can be recomputed. */
export interface WindowRecord {
  /** token offset of the window in the text's ids */
  start: number;
  /** summed negative log-likelihood of the scored tokens */
  nll: number;
  tokens: number;
  /** share of cache entries kept right after the first compression */
  kept: number;
  /** decode-ppl: compressions run while scoring */
  recompressions?: number;
}

export interface PerplexityResult {
  config: Config;
  windows: number;
  tokens: number;
  nll: number;
  ppl: number;
  /** mean share of cache entries kept right after compression */
  keptFraction: number;
  /** every window, in the order of the text */
  perWindow?: WindowRecord[];
}

/** One retrieval case under one config. */
export interface CaseOutcome {
  index: number;
  /** the needle depth the case was built with (drawn per case for 'random') */
  depth: number;
  passed: boolean;
}

export interface RetrievalResult {
  config: Config;
  task: RetrievalTaskName;
  contextTokens: number;
  depth: DepthSpec;
  cases: number;
  passed: number;
  /** every case of the cell */
  outcomes?: CaseOutcome[];
}

/**
 * How much of one cell was measured: a perplexity task's windows, or a retrieval task's cases at one length and depth.
 * A window or case counts only once every config has it, so `done` holds for every config alike.
 */
export interface CoverageCell {
  task: EvalTask;
  /** retrieval: the cell's context length and needle depth */
  contextTokens?: number;
  depth?: DepthSpec;
  unit: 'windows' | 'cases';
  /** windows or cases measured under every config */
  done: number;
  /** windows or cases the run set out to measure (perplexity: as many windows as the text has room for) */
  planned: number;
}

export interface EvalResults {
  model: string;
  settings: EvalSettings;
  interrupted: boolean;
  /** per cell, how many windows or cases were really measured, of those planned (less than planned after an abort) */
  coverage?: CoverageCell[];
  perplexity: PerplexityResult[];
  /** decode-ppl: perplexity while the cache is re-compressed during decoding */
  decodePerplexity?: PerplexityResult[];
  retrieval: RetrievalResult[];
  /** per config, mean share of entries kept after compression over all retrieval cases */
  retrievalKept: { config: Config; keptFraction: number }[];
}

/** `semanticache:paper@0.75`, `snapkv@0.5`, `full`. */
export function configLabel(config: Omit<Config, 'label'>): string {
  if (config.policy === 'full') return 'full';
  return `${specName(config)}@${config.ratio}`;
}

/** The policy name of a config as written in a grid's policies: `semanticache:paper`. */
export const configName = (config: Config): string => specName(config);

export function configsFor(policies: readonly string[], ratios: number[]): Config[] {
  const specs = policies.map((p) => parsePolicySpec(p, 'policies'));
  const out: Config[] = [];
  if (specs.some((s) => s.policy === 'full')) out.push({ policy: 'full', ratio: 0, label: 'full' });
  const seen = new Set<string>();
  for (const spec of specs) {
    const name = specName(spec);
    if (spec.policy === 'full' || seen.has(name)) continue;
    seen.add(name);
    for (const ratio of ratios) {
      const c = { policy: spec.policy, ...(spec.preset ? { preset: spec.preset } : {}), ratio };
      out.push({ ...c, label: configLabel(c) });
    }
  }
  return out;
}

const budgetOf = (config: Config): Budget => ({ ratio: config.ratio });

/** Start offsets of `count` windows of `span` tokens spread evenly over `total` tokens. */
export function windowStarts(total: number, span: number, count: number, what = 'context + target'): number[] {
  if (span > total) throw new SettingsError(`the text has ${total} tokens, fewer than one window of ${span} (${what})`);
  const room = total - span;
  const n = Math.min(count, room + 1);
  return Array.from({ length: n }, (_, i) => (n === 1 ? 0 : Math.round((i * room) / (n - 1))));
}

export interface EvalHooks {
  /** aborted: the run stops between cases and returns what every config has measured */
  signal: AbortSignal;
  /** the number of steps (one config on one window or case) the run plans */
  onStart(total: number): void;
  onStep(detail: string): void;
  /** how errors name an EvalSettings field (default: the field's name) */
  settingName?: SettingName;
}

/**
 * Prefills `ids` once, collecting every attention statistic a policy may read (h2o's mass accumulated over all
 * queries, the observation window's for the others), then runs `fn` on a compressed copy of that state for every
 * config: each config sees the identical prefill, and a grid costs one prefill per case, not one per config.
 */
async function forEachConfig(
  engine: Engine,
  ids: number[],
  configs: Config[],
  hooks: EvalHooks,
  fn: (configIndex: number, session: EngineSession) => Promise<void>,
  options: { fresh?: boolean } = {},
): Promise<void> {
  // compresses one config's session (after `before`, if given), runs `fn` on it and disposes of it; an error after
  // an abort only ends the config
  const compressAndRun = async (ci: number, session: EngineSession, before?: () => Promise<void>) => {
    try {
      if (before) {
        await before();
        if (hooks.signal.aborted) return;
      }
      await session.compress();
      await fn(ci, session);
    } catch (err) {
      if (!hooks.signal.aborted) throw err;
    } finally {
      session.dispose();
    }
  };
  if (options.fresh) {
    // a session of the config's own policy from the start: it collects exactly the attention statistics its policy
    // reads, as it must when it compresses again later (decode-ppl); the prefill is the same for every config
    for (const [ci, config] of configs.entries()) {
      if (hooks.signal.aborted) return;
      const session = engine.session(config.policy, budgetOf(config), specKnobs(config));
      await compressAndRun(ci, session, async () => {
        await session.prefill(ids, { signal: hooks.signal });
      });
    }
    return;
  }
  // one prefill for every config: the probe collects both the observation window's and the accumulated mass
  if (hooks.signal.aborted) return;
  const base = engine.session('snapkv', { ratio: 0 }, {}, { collectAllMass: true });
  try {
    await base.prefill(ids, { signal: hooks.signal });
    for (const [ci, config] of configs.entries()) {
      if (hooks.signal.aborted) return;
      await compressAndRun(ci, base.fork(config.policy, budgetOf(config), specKnobs(config)));
    }
  } finally {
    base.dispose();
  }
}

const maxEntriesPerHead = (session: EngineSession): number => Math.max(...session.stats().entriesPerHead);

/**
 * decode-ppl scoring: `ids` teacher-forced after a compressed prefill whose heads hold at most `budget` entries each,
 * compressing back to `budget` whenever a head holds more than `budget + step` — what the runtime's decode trigger
 * `{ maxEntries: budget + step, targetEntries: budget }` does token by token (the session's `score` feeds a whole
 * block without running the trigger, so the blocks end exactly where the trigger would fire). Merging policies
 * re-merge their cores; 'full' (`budget` undefined) keeps everything.
 */
export async function scoreWhileCompressing(
  session: EngineSession,
  ids: readonly number[],
  budget: number | undefined,
  step: number,
  signal?: AbortSignal,
): Promise<{ nll: number; count: number; recompressions: number }> {
  if (budget === undefined) return { ...(await session.score(ids, { signal })), recompressions: 0 };
  let nll = 0;
  let count = 0;
  let recompressions = 0;
  for (let at = 0; at < ids.length; ) {
    if (signal?.aborted) break;
    // tokens until the fullest head passes budget + step
    const room = Math.max(1, budget + step + 1 - maxEntriesPerHead(session));
    const part = ids.slice(at, at + room);
    const scored = await session.score(part, { signal });
    nll += scored.nll;
    count += scored.count;
    at += part.length;
    if (at < ids.length && maxEntriesPerHead(session) > budget + step) {
      await session.compress({ maxEntries: budget });
      recompressions++;
    }
  }
  return { nll, count, recompressions };
}

function perplexityResults(configs: Config[], perWindow: WindowRecord[][]): PerplexityResult[] {
  return configs
    .map((config, ci) => {
      const ws = perWindow[ci];
      const tokens = ws.reduce((a, w) => a + w.tokens, 0);
      const nll = ws.reduce((a, w) => a + w.nll, 0);
      return {
        config,
        windows: ws.length,
        tokens,
        nll,
        ppl: Math.exp(nll / tokens),
        keptFraction: ws.reduce((a, w) => a + w.kept, 0) / ws.length,
        perWindow: ws,
      };
    })
    .filter((p) => p.windows > 0);
}

/** Runs the evaluation. Stops between cases when the signal aborts and returns what was measured so far. */
export async function runEval(engine: Engine, text: string, s: EvalSettings, hooks: EvalHooks): Promise<EvalResults> {
  const configs = configsFor(s.policies, s.ratios);
  const retrievalTasks = s.tasks.filter(isRetrievalTask);
  const doPpl = s.tasks.includes('ppl');
  const doDecode = s.tasks.includes('decode-ppl');
  const decodeTarget = s.decodeTarget ?? 2048;
  const decodeStep = s.decodeStep ?? 64;
  const name = hooks.settingName ?? ownName;
  const contextPlus = (target: string) => `${name('context')} + ${name(target)}`;
  if (doPpl) checkContext(engine, s.context + s.target, contextPlus('target'));
  if (doDecode) checkContext(engine, s.context + decodeTarget, contextPlus('decodeTarget'));
  for (const length of s.lengths) {
    if (retrievalTasks.length) checkContext(engine, length + 8, `${name('lengths')} ${length}`);
  }
  const ids = doPpl || doDecode ? encodeLong(engine, text, { addSpecialTokens: false }) : [];
  const starts = doPpl ? windowStarts(ids.length, s.context + s.target, s.windows, contextPlus('target')) : [];
  const decodeStarts = doDecode
    ? windowStarts(ids.length, s.context + decodeTarget, s.windows, contextPlus('decodeTarget'))
    : [];

  const cellsPerTask = s.lengths.length * s.depths.length * s.cases;
  hooks.onStart(configs.length * (starts.length + decodeStarts.length + retrievalTasks.length * cellsPerTask));

  const results: EvalResults = {
    model: engine.label,
    settings: { ...s, decodeTarget, decodeStep },
    interrupted: false,
    perplexity: [],
    retrieval: [],
    retrievalKept: [],
  };

  // perplexity: per window, every config sees the same context and target; a window counts only once every config
  // has scored it, so partial results after an abort still compare like with like
  const runWindows = async (task: PplTask, windowStartsOf: number[], target: number): Promise<WindowRecord[][]> => {
    const perWindow: WindowRecord[][] = configs.map(() => []);
    for (const [w, start] of windowStartsOf.entries()) {
      if (hooks.signal.aborted) break;
      const window: WindowRecord[] = [];
      const targetIds = ids.slice(start + s.context, start + s.context + target);
      await forEachConfig(
        engine,
        ids.slice(start, start + s.context),
        configs,
        hooks,
        async (ci, session) => {
          hooks.onStep(`${task} window ${w + 1}/${windowStartsOf.length} ${configs[ci].label}`);
          const st = session.stats();
          const kept = st.entries / st.fullEntries;
          if (task === 'ppl') {
            const scored = await session.score(targetIds, { signal: hooks.signal });
            window[ci] = { start, nll: scored.nll, tokens: scored.count, kept };
          } else {
            // E: the per-head entries the budget left; the cache is held near it while decoding
            const budget = configs[ci].policy === 'full' ? undefined : maxEntriesPerHead(session);
            const scored = await scoreWhileCompressing(session, targetIds, budget, decodeStep, hooks.signal);
            window[ci] = { start, nll: scored.nll, tokens: scored.count, kept, recompressions: scored.recompressions };
          }
        },
        { fresh: task === 'decode-ppl' },
      );
      if (hooks.signal.aborted) break;
      for (const [ci, rec] of window.entries()) perWindow[ci].push(rec);
    }
    return perWindow;
  };
  if (doPpl) results.perplexity = perplexityResults(configs, await runWindows('ppl', starts, s.target));
  if (doDecode && !hooks.signal.aborted) {
    results.decodePerplexity = perplexityResults(configs, await runWindows('decode-ppl', decodeStarts, decodeTarget));
  }

  // retrieval: each case is generated once and run under every config
  if (retrievalTasks.length > 0 && !hooks.signal.aborted) {
    // filler and the fixed parts are measured without special tokens: they sit inside the context
    const codec = {
      encode: (t: string) => encodeLong(engine, t, { addSpecialTokens: false }),
      decode: (ids: ArrayLike<number>) => engine.decode(ids),
    };
    const filler = new FillerSource(text, codec);
    const cells = new Map<string, RetrievalResult>();
    const kept = configs.map(() => ({ sum: 0, count: 0 }));
    outer: for (const task of retrievalTasks) {
      for (const contextTokens of s.lengths) {
        for (const depthSpec of s.depths) {
          for (let index = 0; index < s.cases; index++) {
            const depth = depthSpec === 'random' ? randomDepth(task, s.seed, contextTokens, index) : depthSpec;
            const c = retrievalCase(task, filler, codec, { contextTokens, depth, seed: s.seed, index });
            const contextIds = encodeLong(engine, c.context);
            const questionIds = engine.encode(c.question, { addSpecialTokens: false });
            const answerTokens = engine.encode(c.answer, { addSpecialTokens: false }).length;
            const prefix = s.queryAware ? contextIds.concat(questionIds) : contextIds;
            const outcome: { passed: boolean; kept: number }[] = [];
            await forEachConfig(engine, prefix, configs, hooks, async (ci, session) => {
              hooks.onStep(`${task} ${contextTokens} tok, depth ${depth}, case ${index + 1} ${configs[ci].label}`);
              const st = session.stats();
              let continuation = '';
              const stream = session.generate(
                s.queryAware ? [] : questionIds,
                { maxTokens: answerTokens + 2, temperature: 0, topK: 0, topP: 1, seed: 0, stop: [] },
                { signal: hooks.signal },
              );
              for await (const tok of stream) {
                continuation += tok.text;
                if (continuation.length >= c.answer.length) break;
              }
              outcome[ci] = { passed: isCorrect(continuation, c.answer), kept: st.entries / st.fullEntries };
            });
            // a case counts only once every config has answered it
            if (hooks.signal.aborted) break outer;
            for (const [ci, config] of configs.entries()) {
              kept[ci].sum += outcome[ci].kept;
              kept[ci].count++;
              const key = `${config.label}|${task}|${contextTokens}|${depthSpec}`;
              let cell = cells.get(key);
              if (!cell) {
                cell = { config, task, contextTokens, depth: depthSpec, cases: 0, passed: 0, outcomes: [] };
                cells.set(key, cell);
              }
              cell.cases++;
              if (outcome[ci].passed) cell.passed++;
              cell.outcomes?.push({ index, depth, passed: outcome[ci].passed });
            }
          }
        }
      }
    }
    results.retrieval = [...cells.values()];
    results.retrievalKept = configs
      .map((config, i) => ({ config, keptFraction: kept[i].count ? kept[i].sum / kept[i].count : Number.NaN }))
      .filter((_, i) => kept[i].count > 0);
  }
  results.interrupted = hooks.signal.aborted;
  const measured = (rows: PerplexityResult[] | undefined) =>
    rows && rows.length === configs.length ? Math.min(...rows.map((p) => p.windows)) : 0;
  const coverage: CoverageCell[] = [];
  if (doPpl)
    coverage.push({ task: 'ppl', unit: 'windows', done: measured(results.perplexity), planned: starts.length });
  if (doDecode) {
    coverage.push({
      task: 'decode-ppl',
      unit: 'windows',
      done: measured(results.decodePerplexity),
      planned: decodeStarts.length,
    });
  }
  for (const task of retrievalTasks) {
    for (const contextTokens of s.lengths) {
      for (const depth of s.depths) {
        const cells = results.retrieval.filter(
          (x) => x.task === task && x.contextTokens === contextTokens && x.depth === depth,
        );
        const done = cells.length === configs.length ? Math.min(...cells.map((x) => x.cases)) : 0;
        coverage.push({ task, contextTokens, depth, unit: 'cases', done, planned: s.cases });
      }
    }
  }
  results.coverage = coverage;
  return results;
}
