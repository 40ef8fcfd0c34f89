import { readFileSync } from 'node:fs';
import {
  type CommandSpec,
  choice,
  helpText,
  listOpt,
  MODEL_OPTIONS,
  numberOpt,
  OUTPUT_OPTIONS,
  parseCommand,
  parseNumber,
  stringOpt,
} from '../args';
import { readTextFile, VAL_SLICE_PATH } from '../assets';
import { type CliContext, note, progressFor } from '../context';
import { type Budget, type Engine, type EngineSession, POLICIES, type PolicyName } from '../engine';
import { EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../errors';
import { encodeLong } from '../long-text';
import { parsePolicySpec, policySpecNames, specKnobs, specName } from '../policy-spec';
import { writeReport } from '../report';
import {
  binomialSE,
  DEFAULT_RESAMPLES,
  type NllUnit,
  type PairedEstimate,
  pairedMeanDifference,
  pairedPerplexityDifference,
  pairWins,
  signTest,
  verdict,
} from '../stats';
import type { LineChart, Series } from '../svg';
import { type Table, toMarkdown, toRecords } from '../table';
import { FillerSource, isCorrect, RETRIEVAL_TASKS, type RetrievalTaskName, randomDepth, retrievalCase } from '../tasks';
import { checkContext, checkRatioFits, isQuiet, openEngine, parseRatio } from './shared';

export const PPL_TASKS = ['ppl', 'decode-ppl'] as const;
export type PplTask = (typeof PPL_TASKS)[number];
export const EVAL_TASKS = [...PPL_TASKS, ...RETRIEVAL_TASKS] as const;
export type EvalTask = (typeof EVAL_TASKS)[number];

const isPplTask = (t: EvalTask): t is PplTask => (PPL_TASKS as readonly string[]).includes(t);
const isRetrievalTask = (t: EvalTask): t is RetrievalTaskName => !isPplTask(t);

/** The policies of `--policies all`: every plain policy (presets are named explicitly). */
const ALL_POLICIES: string[] = [...POLICIES];

export const evalSpec: CommandSpec = {
  name: 'eval',
  short: 'perplexity and pass-key / code-recall accuracy per policy and budget',
  summary:
    'Perplexity (after a compressed prefill, and while re-compressing during decoding) and retrieval accuracy (pass key, code recall) under each policy and budget, against the full cache, with paired statistics against a reference policy. Writes a markdown table, JSON with every per-window and per-case record, and SVG/PNG plots.',
  usage: 'semanticache eval [options]',
  maxPositionals: 0,
  options: {
    tasks: {
      type: 'string',
      arg: 'LIST',
      help: 'ppl, decode-ppl, passkey, code-recall',
      default: 'ppl,passkey,code-recall',
    },
    policies: {
      type: 'string',
      arg: 'LIST',
      help: `${ALL_POLICIES.join(', ')}, or semanticache:PRESET (${policySpecNames()
        .filter((n) => n.includes(':'))
        .map((n) => n.slice(n.indexOf(':') + 1))
        .join(', ')})`,
      default: 'all',
    },
    ratios: { type: 'string', arg: 'LIST', help: 'fractions of entries removed', default: '0.5,0.75' },
    reference: {
      type: 'string',
      arg: 'POLICY',
      help: 'the policy every other one is compared with, pair by pair, at the same ratio (default: semanticache if listed, else the first compressing policy)',
    },
    text: {
      type: 'string',
      arg: 'FILE',
      help: 'text for perplexity and retrieval filler (default: the bundled held-out slice)',
    },
    context: {
      type: 'string',
      arg: 'C',
      help: 'ppl, decode-ppl: tokens prefilled, then compressed',
      default: '2048',
    },
    target: { type: 'string', arg: 'T', help: 'ppl: tokens scored after compression', default: '256' },
    'decode-target': {
      type: 'string',
      arg: 'T',
      help: 'decode-ppl: tokens scored after compression, re-compressing as the cache grows',
      default: '2048',
    },
    'decode-step': {
      type: 'string',
      arg: 'S',
      help: 'decode-ppl: entries a head may grow past its budget before it is compressed again',
      default: '64',
    },
    windows: {
      type: 'string',
      arg: 'N',
      help: 'ppl, decode-ppl: windows spread evenly over the text',
      default: '4',
    },
    lengths: { type: 'string', arg: 'LIST', help: 'retrieval: context lengths in tokens', default: '1024,2048,4096' },
    depths: {
      type: 'string',
      arg: 'LIST',
      help: "retrieval: needle depths in [0, 1], or 'random' (a uniform depth per case)",
      default: '0,0.5,1',
    },
    cases: { type: 'string', arg: 'N', help: 'retrieval: cases per length × depth cell', default: '2' },
    seed: {
      type: 'string',
      arg: 'N',
      help: 'seed of the generated retrieval cases and of the bootstrap',
      default: '0',
    },
    'query-aware': {
      type: 'boolean',
      help: 'retrieval: prefill the question before compressing (default: compress the context, then ask)',
    },
    out: {
      type: 'string',
      arg: 'DIR',
      help: 'where to write eval.md, eval.json and the plots',
      default: 'semanticache-eval',
    },
    ...MODEL_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  examples: [
    'semanticache eval --tasks ppl --windows 8',
    'semanticache eval --model ./semanticache-demo-retrieval --tasks passkey,code-recall --lengths 1024,4096 --depths random --cases 16',
    'semanticache eval --policies semanticache,semanticache:paper,snapkv,full --ratios 0.5,0.75 --reference semanticache',
    'semanticache eval --tasks decode-ppl --policies full,semanticache,snapkv --ratios 0.75 --windows 4',
  ],
};

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
  /** per cell, how many windows or cases were really measured, of those planned (less than planned after Ctrl-C) */
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

/** The policy name of a config as written in `--policies`: `semanticache:paper`. */
export const configName = (config: Config): string => specName(config);

export function configsFor(policies: readonly string[], ratios: number[]): Config[] {
  const specs = policies.map((p) => parsePolicySpec(p, '--policies'));
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

function parseDepth(raw: string, label: string): DepthSpec {
  return raw === 'random' ? 'random' : parseNumber(raw, label, { min: 0, max: 1 });
}

/** `--reference`, checked against the policies; by default semanticache, else the first compressing policy. */
function referenceFor(policies: string[], raw: string | undefined): string | null {
  if (raw !== undefined) {
    const name = specName(parsePolicySpec(raw, '--reference'));
    if (!policies.includes(name)) {
      throw new UsageError(`--reference: '${raw}' is not one of --policies (${policies.join(', ')})`);
    }
    return name;
  }
  if (policies.includes('semanticache')) return 'semanticache';
  return policies.find((p) => p !== 'full') ?? null;
}

function parseSettings(values: Parameters<typeof stringOpt>[0]): EvalSettings {
  const policiesRaw = stringOpt(values, 'policies', 'all');
  const specs =
    policiesRaw === 'all'
      ? ALL_POLICIES
      : listOpt(values, 'policies', ALL_POLICIES, (item, label) => specName(parsePolicySpec(item, label)));
  const policies = [...new Set(specs)];
  const settings: EvalSettings = {
    tasks: [...new Set(listOpt<EvalTask>(values, 'tasks', ['ppl', 'passkey', 'code-recall'], choice(EVAL_TASKS)))],
    policies,
    ratios: [...new Set(listOpt(values, 'ratios', [0.5, 0.75], parseRatio))].sort((a, b) => a - b),
    context: numberOpt(values, 'context', 2048, { min: 8, integer: true }),
    target: numberOpt(values, 'target', 256, { min: 1, integer: true }),
    decodeTarget: numberOpt(values, 'decode-target', 2048, { min: 1, integer: true }),
    decodeStep: numberOpt(values, 'decode-step', 64, { min: 1, integer: true }),
    windows: numberOpt(values, 'windows', 4, { min: 1, integer: true }),
    lengths: listOpt(values, 'lengths', [1024, 2048, 4096], (s, l) => parseNumber(s, l, { min: 64, integer: true })),
    depths: [...new Set(listOpt<DepthSpec>(values, 'depths', [0, 0.5, 1], parseDepth))],
    cases: numberOpt(values, 'cases', 2, { min: 1, integer: true }),
    seed: numberOpt(values, 'seed', 0, { min: 0, max: 2 ** 32 - 1, integer: true }),
    queryAware: values['query-aware'] === true,
    reference: referenceFor(policies, stringOpt(values, 'reference')),
  };
  if (settings.policies.some((p) => p !== 'full')) {
    const ratio = Math.max(...settings.ratios);
    if (settings.tasks.some(isPplTask)) checkRatioFits(settings.context, ratio, '--context');
    if (settings.tasks.some(isRetrievalTask)) checkRatioFits(Math.min(...settings.lengths), ratio, '--lengths');
  }
  return settings;
}

/** Start offsets of `count` windows of `span` tokens spread evenly over `total` tokens. */
export function windowStarts(total: number, span: number, count: number, what = '--context + --target'): number[] {
  if (span > total) throw new UsageError(`the text has ${total} tokens, fewer than one window of ${span} (${what})`);
  const room = total - span;
  const n = Math.min(count, room + 1);
  return Array.from({ length: n }, (_, i) => (n === 1 ? 0 : Math.round((i * room) / (n - 1))));
}

export interface EvalHooks {
  signal: AbortSignal;
  onStart(total: number): void;
  onStep(detail: string): void;
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
  // Ctrl-C only ends the config
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
  if (doPpl) checkContext(engine, s.context + s.target, '--context + --target');
  if (doDecode) checkContext(engine, s.context + decodeTarget, '--context + --decode-target');
  for (const length of s.lengths) if (retrievalTasks.length) checkContext(engine, length + 8, `--lengths ${length}`);
  const ids = doPpl || doDecode ? encodeLong(engine, text, { addSpecialTokens: false }) : [];
  const starts = doPpl ? windowStarts(ids.length, s.context + s.target, s.windows) : [];
  const decodeStarts = doDecode
    ? windowStarts(ids.length, s.context + decodeTarget, s.windows, '--context + --decode-target')
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
  // has scored it, so partial results after Ctrl-C still compare like with like
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

/**
 * What each cell really holds, for the report: one line per perplexity task, and per retrieval task one line when
 * every cell is complete, else one per cell. Empty for results without coverage.
 */
export function coverageMarkdown(r: EvalResults): string {
  const coverage = r.coverage ?? [];
  if (coverage.length === 0) return '';
  const lines: string[] = [];
  for (const c of coverage.filter((x) => x.unit === 'windows')) {
    const target = c.task === 'ppl' ? r.settings.target : r.settings.decodeTarget;
    const room =
      c.planned < r.settings.windows ? ` (the text has room for ${c.planned} of the ${r.settings.windows} asked)` : '';
    lines.push(`- ${c.task} (C=${r.settings.context}, T=${target}): ${c.done} of ${c.planned} windows${room}`);
  }
  for (const task of r.settings.tasks.filter(isRetrievalTask)) {
    const cells = coverage.filter((x) => x.task === task);
    if (cells.length === 0) continue;
    if (cells.every((x) => x.done === x.planned)) {
      lines.push(
        `- ${task}: ${cells[0].planned} of ${cells[0].planned} cases in each of the ${cells.length} length × depth cells`,
      );
    } else {
      for (const x of cells)
        lines.push(`- ${task} ${x.contextTokens} tok, depth ${x.depth}: ${x.done} of ${x.planned} cases`);
    }
  }
  const what = r.interrupted ? 'Measured before the interrupt' : 'Measured';
  return `${what} (every config on the same windows and cases; the tables cover only these):\n\n${lines.join('\n')}\n\n`;
}

function accuracy(rows: RetrievalResult[]): number | null {
  const cases = rows.reduce((a, r) => a + r.cases, 0);
  return cases === 0 ? null : rows.reduce((a, r) => a + r.passed, 0) / cases;
}

function accuracySE(rows: RetrievalResult[]): number | null {
  const cases = rows.reduce((a, r) => a + r.cases, 0);
  return cases === 0
    ? null
    : binomialSE(
        rows.reduce((a, r) => a + r.passed, 0),
        cases,
      );
}

const units = (p: PerplexityResult | undefined): NllUnit[] | undefined =>
  p?.perWindow?.map((w) => ({ nll: w.nll, tokens: w.tokens }));

/** Bootstrap options of every interval in the report: seeded by --seed, so a report is reproducible. */
const bootstrapOptions = (r: EvalResults) => ({ resamples: DEFAULT_RESAMPLES, seed: r.settings.seed });

/** Δppl of `p` against the full cache with its paired bootstrap SE over windows; null where it cannot be computed. */
function deltaVsFull(r: EvalResults, rows: PerplexityResult[], p: PerplexityResult | undefined): PairedEstimate | null {
  const full = rows.find((x) => x.config.policy === 'full');
  const a = units(p);
  const b = units(full);
  if (!a || !b || a.length !== b.length || a.length === 0) return null;
  return pairedPerplexityDifference(a, b, bootstrapOptions(r));
}

const pplRowsOf = (r: EvalResults, task: PplTask): PerplexityResult[] =>
  task === 'ppl' ? r.perplexity : (r.decodePerplexity ?? []);

/** The configs of a results file, in report order. */
const configsOf = (r: EvalResults): Config[] => configsFor(r.settings.policies, r.settings.ratios);

/** policy × budget × metric, per-length and per-depth accuracy tables, then the paired comparisons. */
export function evalTables(r: EvalResults): Table[] {
  const configs = configsOf(r);
  const tasks = r.settings.tasks;
  const pplTasks = PPL_TASKS.filter((t) => tasks.includes(t));
  const retrievalTasks = tasks.filter(isRetrievalTask);
  const columns = ['policy', 'ratio', 'kept'];
  for (const t of pplTasks) {
    const name = t === 'ppl' ? 'ppl' : 'decode ppl';
    columns.push(name, `Δ${name} vs full`, `Δ${name} SE`);
  }
  for (const t of retrievalTasks) columns.push(`${t} acc`, `${t} acc SE`);
  const rows = configs.map((config) => {
    const kept =
      pplTasks
        .map((t) => pplRowsOf(r, t).find((x) => x.config.label === config.label)?.keptFraction)
        .find((k) => k !== undefined) ??
      r.retrievalKept.find((k) => k.config.label === config.label)?.keptFraction ??
      null;
    const row: (string | number | null)[] = [configName(config), config.ratio, kept];
    for (const t of pplTasks) {
      const all = pplRowsOf(r, t);
      const p = all.find((x) => x.config.label === config.label);
      const fullPpl = all.find((x) => x.config.policy === 'full')?.ppl;
      const d = config.policy === 'full' ? null : deltaVsFull(r, all, p);
      row.push(p?.ppl ?? null, p && fullPpl !== undefined ? p.ppl - fullPpl : null, d && d.n >= 2 ? d.se : null);
    }
    for (const t of retrievalTasks) {
      const cells = r.retrieval.filter((x) => x.task === t && x.config.label === config.label);
      row.push(accuracy(cells), accuracySE(cells));
    }
    return row;
  });
  const tables: Table[] = [{ title: 'Summary', columns, rows }];
  for (const t of retrievalTasks) {
    tables.push({
      title: `${t} accuracy by context length (all depths)`,
      columns: ['policy', 'ratio', ...r.settings.lengths.map((l) => `${l} tok`)],
      rows: configs.map((config) => [
        configName(config),
        config.ratio,
        ...r.settings.lengths.map((l) =>
          accuracy(r.retrieval.filter((x) => x.task === t && x.config.label === config.label && x.contextTokens === l)),
        ),
      ]),
    });
    tables.push({
      title: `${t} accuracy by needle depth (all lengths)`,
      columns: ['policy', 'ratio', ...r.settings.depths.map((d) => `depth ${d}`)],
      rows: configs.map((config) => [
        configName(config),
        config.ratio,
        ...r.settings.depths.map((d) =>
          accuracy(r.retrieval.filter((x) => x.task === t && x.config.label === config.label && x.depth === d)),
        ),
      ]),
    });
    if (r.settings.depths.includes('random')) tables.push(randomDepthTable(r, t, configs));
  }
  tables.push(...pairedTables(r));
  return tables;
}

const DEPTH_BINS = [0, 0.25, 0.5, 0.75, 1] as const;

/** Accuracy of the random-depth cases binned by the depth each case drew. */
function randomDepthTable(r: EvalResults, task: RetrievalTaskName, configs: Config[]): Table {
  const bins = DEPTH_BINS.slice(0, -1).map((lo, i) => ({
    lo,
    hi: DEPTH_BINS[i + 1],
    last: i === DEPTH_BINS.length - 2,
  }));
  return {
    title: `${task} accuracy of the random-depth cases by drawn depth (all lengths)`,
    columns: ['policy', 'ratio', ...bins.map((b) => `${b.lo}–${b.hi}${b.last ? ']' : ')'}`)],
    rows: configs.map((config) => {
      const outcomes = r.retrieval
        .filter((x) => x.task === task && x.config.label === config.label && x.depth === 'random')
        .flatMap((x) => x.outcomes ?? []);
      return [
        configName(config),
        config.ratio,
        ...bins.map((b) => {
          const inBin = outcomes.filter((o) => o.depth >= b.lo && (o.depth < b.hi || (b.last && o.depth <= b.hi)));
          return inBin.length === 0 ? null : inBin.filter((o) => o.passed).length / inBin.length;
        }),
      ];
    }),
  };
}

/** Pairs of (reference, other) configs compared: same ratio; against 'full' every other config. */
function comparisonPairs(r: EvalResults): { reference: Config; other: Config }[] {
  const ref = r.settings.reference;
  if (!ref) return [];
  const configs = configsOf(r);
  const refConfigs = configs.filter((c) => configName(c) === ref);
  const pairs: { reference: Config; other: Config }[] = [];
  for (const reference of refConfigs) {
    for (const other of configs) {
      if (configName(other) === ref || other.policy === 'full') continue;
      if (reference.policy === 'full' || other.ratio === reference.ratio) pairs.push({ reference, other });
    }
  }
  return pairs;
}

const PAIRED_COLUMNS = (metric: string, better: string) => [
  'cell',
  'ratio',
  'reference',
  'other',
  'n',
  `reference ${metric}`,
  `other ${metric}`,
  `Δ${metric} other − ref (${better})`,
  '95% CI low',
  '95% CI high',
  'reference better on',
  'other better on',
  'sign test p',
  'verdict',
];

function pairedRow(
  cell: string,
  reference: Config,
  other: Config,
  values: { ref: number; other: number },
  est: PairedEstimate,
  wins: { reference: number; other: number },
  lowerIsBetter: boolean,
): (string | number | null)[] {
  const spread = est.n >= 2;
  return [
    cell,
    other.ratio,
    configName(reference),
    configName(other),
    est.n,
    values.ref,
    values.other,
    est.estimate,
    spread ? est.lo : null,
    spread ? est.hi : null,
    wins.reference,
    wins.other,
    signTest(wins.reference, wins.other),
    verdict(est, lowerIsBetter),
  ];
}

/**
 * Paired comparisons against the reference policy: perplexity over the same windows (bootstrap of windows, sign test
 * on per-window NLL), accuracy over the same cases (bootstrap of cases, sign test on the cases only one side passed),
 * per context length and over all lengths.
 */
export function pairedTables(r: EvalResults): Table[] {
  const pairs = comparisonPairs(r);
  if (pairs.length === 0) return [];
  const opts = bootstrapOptions(r);
  const how = `95% paired bootstrap CI (${opts.resamples} resamples, seed ${opts.seed}); sign test: exact two-sided binomial over the pairs that differ; a CI containing 0 is a tie`;
  const tables: Table[] = [];
  for (const task of PPL_TASKS) {
    const all = pplRowsOf(r, task);
    if (all.length === 0) continue;
    const rows: (string | number | null)[][] = [];
    for (const { reference, other } of pairs) {
      const a = all.find((p) => p.config.label === reference.label);
      const b = all.find((p) => p.config.label === other.label);
      const ua = units(a);
      const ub = units(b);
      if (!a || !b || !ua || !ub || ua.length !== ub.length || ua.length === 0) continue;
      const est = pairedPerplexityDifference(ub, ua, opts);
      const wins = pairWins(
        ua.map((u) => u.nll / u.tokens),
        ub.map((u) => u.nll / u.tokens),
        true,
      );
      rows.push(pairedRow('all windows', reference, other, { ref: a.ppl, other: b.ppl }, est, wins, true));
    }
    if (rows.length > 0) {
      const name = task === 'ppl' ? 'ppl' : 'decode ppl';
      tables.push({
        title: `Paired comparison: ${name} against ${r.settings.reference} — ${how}`,
        columns: PAIRED_COLUMNS(name, '< 0: other better'),
        rows,
      });
    }
  }
  for (const task of r.settings.tasks.filter(isRetrievalTask)) {
    const rows: (string | number | null)[][] = [];
    const cellsOf = (config: Config, length?: number) =>
      r.retrieval.filter(
        (x) =>
          x.task === task && x.config.label === config.label && (length === undefined || x.contextTokens === length),
      );
    /** pass (1) / fail (0) per case, keyed by length, depth and index so both sides line up */
    const outcomesOf = (config: Config, length?: number) => {
      const out = new Map<string, number>();
      for (const cell of cellsOf(config, length)) {
        for (const o of cell.outcomes ?? [])
          out.set(`${cell.contextTokens}|${cell.depth}|${o.index}`, o.passed ? 1 : 0);
      }
      return out;
    };
    for (const length of [...r.settings.lengths, undefined]) {
      for (const { reference, other } of pairs) {
        const ra = outcomesOf(reference, length);
        const ob = outcomesOf(other, length);
        const keys = [...ra.keys()].filter((k) => ob.has(k));
        if (keys.length === 0) continue;
        const a = keys.map((k) => ra.get(k) as number);
        const b = keys.map((k) => ob.get(k) as number);
        const est = pairedMeanDifference(b, a, opts);
        const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
        const cell = length === undefined ? 'all lengths' : `${length} tok`;
        rows.push(
          pairedRow(cell, reference, other, { ref: mean(a), other: mean(b) }, est, pairWins(a, b, false), false),
        );
      }
    }
    if (rows.length > 0) {
      tables.push({
        title: `Paired comparison: ${task} accuracy against ${r.settings.reference} — ${how}`,
        columns: PAIRED_COLUMNS('acc', '> 0: other better'),
        rows,
      });
    }
  }
  return tables;
}

/** One line per policy (and preset) against the ratio; the full cache as a dashed flat line. */
export function evalCharts(r: EvalResults): { name: string; chart: LineChart }[] {
  const ratios = r.settings.ratios;
  const configs = configsOf(r);
  const names = [...new Set(configs.filter((c) => c.policy !== 'full').map(configName))];
  const xs = [0, ...ratios];
  const charts: { name: string; chart: LineChart }[] = [];
  const seriesFor = (value: (config: Config) => number | null): Series[] => {
    const out: Series[] = names.map((name) => ({
      name,
      points: configs.filter((c) => configName(c) === name).map((c) => [c.ratio, value(c)] as [number, number | null]),
    }));
    const full = configs.find((c) => c.policy === 'full');
    if (full) {
      const v = value(full);
      out.push({
        name: 'full cache',
        role: 'reference',
        points: [
          [Math.min(...xs), v],
          [Math.max(...xs), v],
        ],
      });
    }
    return out;
  };
  if (r.perplexity.length > 0) {
    charts.push({
      name: 'ppl',
      chart: {
        title: `Perplexity after compression (${r.model}, C=${r.settings.context}, T=${r.settings.target})`,
        xLabel: 'compression ratio (fraction of KV entries removed)',
        yLabel: 'perplexity (lower is better)',
        series: seriesFor((c) => r.perplexity.find((p) => p.config.label === c.label)?.ppl ?? null),
      },
    });
  }
  const decode = r.decodePerplexity ?? [];
  if (decode.length > 0) {
    charts.push({
      name: 'decode-ppl',
      chart: {
        title: `Perplexity while re-compressing during decoding (${r.model}, C=${r.settings.context}, T=${r.settings.decodeTarget}, step ${r.settings.decodeStep})`,
        xLabel: 'compression ratio (fraction of KV entries removed)',
        yLabel: 'perplexity (lower is better)',
        series: seriesFor((c) => decode.find((p) => p.config.label === c.label)?.ppl ?? null),
      },
    });
  }
  for (const task of RETRIEVAL_TASKS) {
    if (!r.retrieval.some((x) => x.task === task)) continue;
    charts.push({
      name: task,
      chart: {
        title: `${task === 'passkey' ? 'Pass key' : 'Code recall'} accuracy (${r.model})`,
        xLabel: 'compression ratio (fraction of KV entries removed)',
        yLabel: 'accuracy',
        yInclude: [0, 1],
        dodge: true,
        series: seriesFor((c) => accuracy(r.retrieval.filter((x) => x.task === task && x.config.label === c.label))),
      },
    });
  }
  return charts;
}

/** What the report's uncertainty columns mean, printed under the header. */
function methodNote(r: EvalResults): string {
  const lines: string[] = [];
  if (r.perplexity.length > 0 || (r.decodePerplexity ?? []).length > 0) {
    lines.push(
      '- Δppl SE: bootstrap over windows, paired with the full cache (each resample recomputes exp(Σnll / Σtokens) for both).',
    );
  }
  if (r.retrieval.length > 0) lines.push('- acc SE: binomial, √(p(1 − p) / n) over the cases.');
  if ((r.decodePerplexity ?? []).length > 0) {
    lines.push(
      `- decode ppl: ${r.settings.decodeTarget} tokens scored after the compressed ${r.settings.context}-token prefill; a head that grows more than ${r.settings.decodeStep} entries past its budget is compressed back to it.`,
    );
  }
  return lines.length > 0 ? `${lines.join('\n')}\n\n` : '';
}

/** The report: model, what was measured (after Ctrl-C: how much of each cell), how to read it, then the tables. */
export function evalMarkdown(r: EvalResults, tables: Table[] = evalTables(r)): string {
  const header = `# semanticache eval\n\nmodel: ${r.model}${r.interrupted ? ' — **interrupted, partial results**' : ''}\n\n${coverageMarkdown(r)}${methodNote(r)}`;
  return header + tables.map((t) => toMarkdown(t)).join('\n');
}

export async function evalCommand(ctx: CliContext, argv: string[]): Promise<number> {
  const { values } = parseCommand(evalSpec, argv);
  if (values.help) {
    ctx.stdout.write(helpText(evalSpec));
    return EXIT_OK;
  }
  const settings = parseSettings(values);
  const textFile = stringOpt(values, 'text');
  const text = textFile !== undefined ? readTextFile(textFile, '--text') : readFileSync(VAL_SLICE_PATH, 'utf8');
  const outDir = stringOpt(values, 'out', 'semanticache-eval');
  const quiet = isQuiet(values);
  const engine = await openEngine(ctx, values);
  try {
    let progress: ReturnType<ReturnType<typeof progressFor>> | undefined;
    const results = await runEval(engine, text, settings, {
      signal: ctx.signal,
      onStart: (total) => {
        progress = progressFor(ctx, quiet)('eval', total);
      },
      onStep: (detail) => progress?.tick(1, detail),
    });
    progress?.finish(results.interrupted ? 'eval interrupted: reporting what was measured' : undefined);
    const tables = evalTables(results);
    const markdown = evalMarkdown(results, tables);
    const json = { ...results, tables: tables.map((t) => ({ title: t.title, rows: toRecords(t) })) };
    const written = writeReport(outDir, 'eval', { markdown, json, charts: evalCharts(results) });
    if (values.json) ctx.stdout.write(`${JSON.stringify({ ...json, files: written.files, notes: written.notes })}\n`);
    else ctx.stdout.write(markdown);
    note(ctx, quiet, `wrote ${written.files.join(', ')}`);
    for (const n of written.notes) note(ctx, quiet, n);
    return results.interrupted ? EXIT_INTERRUPTED : EXIT_OK;
  } finally {
    await engine.dispose();
  }
}
