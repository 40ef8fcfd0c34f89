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
import { type Budget, budgetLabel, type Engine, type EngineSession, POLICIES, type PolicyName } from '../engine';
import { EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../errors';
import { encodeLong } from '../long-text';
import { writeReport } from '../report';
import type { LineChart, Series } from '../svg';
import { type Table, toMarkdown, toRecords } from '../table';
import { FillerSource, isCorrect, RETRIEVAL_TASKS, type RetrievalTaskName, retrievalCase } from '../tasks';
import { checkContext, checkRatioFits, isQuiet, openEngine, parseRatio } from './shared';

export const EVAL_TASKS = ['ppl', ...RETRIEVAL_TASKS] as const;
export type EvalTask = (typeof EVAL_TASKS)[number];

export const evalSpec: CommandSpec = {
  name: 'eval',
  short: 'perplexity and pass-key / code-recall accuracy per policy and budget',
  summary:
    'Perplexity and retrieval accuracy (pass key, code recall) under each policy and budget, against the full cache. Writes a markdown table, JSON and SVG/PNG plots.',
  usage: 'semanticache eval [options]',
  maxPositionals: 0,
  options: {
    tasks: { type: 'string', arg: 'LIST', help: 'ppl, passkey, code-recall', default: 'ppl,passkey,code-recall' },
    policies: { type: 'string', arg: 'LIST', help: POLICIES.join(', '), default: 'all' },
    ratios: { type: 'string', arg: 'LIST', help: 'fractions of entries removed', default: '0.5,0.75' },
    text: {
      type: 'string',
      arg: 'FILE',
      help: 'text for perplexity and retrieval filler (default: the bundled held-out slice)',
    },
    context: { type: 'string', arg: 'C', help: 'perplexity: tokens prefilled, then compressed', default: '2048' },
    target: { type: 'string', arg: 'T', help: 'perplexity: tokens scored after compression', default: '256' },
    windows: {
      type: 'string',
      arg: 'N',
      help: 'perplexity: windows of C+T tokens, spread evenly over the text',
      default: '4',
    },
    lengths: { type: 'string', arg: 'LIST', help: 'retrieval: context lengths in tokens', default: '1024,2048,4096' },
    depths: { type: 'string', arg: 'LIST', help: 'retrieval: needle depths in [0, 1]', default: '0,0.5,1' },
    cases: { type: 'string', arg: 'N', help: 'retrieval: cases per length × depth cell', default: '2' },
    seed: { type: 'string', arg: 'N', help: 'retrieval: seed of the generated cases', default: '0' },
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
    'semanticache eval --model ./semanticache-demo-retrieval --tasks passkey,code-recall --lengths 1024,4096',
    'semanticache eval --policies semanticache,snapkv,full --ratios 0.25,0.5,0.75,0.9',
  ],
};

export interface EvalSettings {
  tasks: EvalTask[];
  policies: PolicyName[];
  ratios: number[];
  context: number;
  target: number;
  windows: number;
  lengths: number[];
  depths: number[];
  cases: number;
  seed: number;
  queryAware: boolean;
}

/** One policy at one budget; 'full' appears once, with ratio 0. */
export interface Config {
  policy: PolicyName;
  ratio: number;
  label: string;
}

export interface PerplexityResult {
  config: Config;
  windows: number;
  tokens: number;
  nll: number;
  ppl: number;
  /** mean share of cache entries kept right after compression */
  keptFraction: number;
}

export interface RetrievalResult {
  config: Config;
  task: RetrievalTaskName;
  contextTokens: number;
  depth: number;
  cases: number;
  passed: number;
}

export interface EvalResults {
  model: string;
  settings: EvalSettings;
  interrupted: boolean;
  perplexity: PerplexityResult[];
  retrieval: RetrievalResult[];
  /** per config, mean share of entries kept after compression over all retrieval cases */
  retrievalKept: { config: Config; keptFraction: number }[];
}

export function configsFor(policies: PolicyName[], ratios: number[]): Config[] {
  const out: Config[] = [];
  if (policies.includes('full')) out.push({ policy: 'full', ratio: 0, label: 'full' });
  for (const policy of policies) {
    if (policy === 'full') continue;
    for (const ratio of ratios) out.push({ policy, ratio, label: budgetLabel(policy, { ratio }) });
  }
  return out;
}

const budgetOf = (config: Config): Budget => ({ ratio: config.ratio });

function parseSettings(values: Parameters<typeof stringOpt>[0]): EvalSettings {
  const policiesRaw = stringOpt(values, 'policies', 'all');
  const policies = policiesRaw === 'all' ? [...POLICIES] : listOpt(values, 'policies', [...POLICIES], choice(POLICIES));
  const settings: EvalSettings = {
    tasks: listOpt(values, 'tasks', [...EVAL_TASKS], choice(EVAL_TASKS)),
    policies: [...new Set(policies)],
    ratios: [...new Set(listOpt(values, 'ratios', [0.5, 0.75], parseRatio))].sort((a, b) => a - b),
    context: numberOpt(values, 'context', 2048, { min: 8, integer: true }),
    target: numberOpt(values, 'target', 256, { min: 1, integer: true }),
    windows: numberOpt(values, 'windows', 4, { min: 1, integer: true }),
    lengths: listOpt(values, 'lengths', [1024, 2048, 4096], (s, l) => parseNumber(s, l, { min: 64, integer: true })),
    depths: listOpt(values, 'depths', [0, 0.5, 1], (s, l) => parseNumber(s, l, { min: 0, max: 1 })),
    cases: numberOpt(values, 'cases', 2, { min: 1, integer: true }),
    seed: numberOpt(values, 'seed', 0, { min: 0, max: 2 ** 32 - 1, integer: true }),
    queryAware: values['query-aware'] === true,
  };
  if (settings.policies.some((p) => p !== 'full')) {
    const ratio = Math.max(...settings.ratios);
    if (settings.tasks.includes('ppl')) checkRatioFits(settings.context, ratio, '--context');
    if (settings.tasks.some((t) => t !== 'ppl')) checkRatioFits(Math.min(...settings.lengths), ratio, '--lengths');
  }
  return settings;
}

/** Start offsets of `count` windows of `span` tokens spread evenly over `total` tokens. */
export function windowStarts(total: number, span: number, count: number): number[] {
  if (span > total)
    throw new UsageError(`the text has ${total} tokens, fewer than one window of ${span} (--context + --target)`);
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
 * Prefills `ids` once per group of configs that read the same attention statistics (h2o accumulates mass over all
 * queries; the other policies read at most the observation window's), then runs `fn` on a compressed copy of that
 * state for every config: each config sees the identical prefill, and a grid costs two prefills per case, not one
 * per config.
 */
async function forEachConfig(
  engine: Engine,
  ids: number[],
  configs: Config[],
  hooks: EvalHooks,
  fn: (configIndex: number, session: EngineSession) => Promise<void>,
): Promise<void> {
  const groups: { probe: PolicyName; members: number[] }[] = [
    { probe: 'snapkv', members: [] },
    { probe: 'h2o', members: [] },
  ];
  for (const [i, c] of configs.entries()) groups[c.policy === 'h2o' ? 1 : 0].members.push(i);
  for (const group of groups) {
    if (group.members.length === 0 || hooks.signal.aborted) continue;
    const base = engine.session(group.probe, { ratio: 0 });
    try {
      await base.prefill(ids, { signal: hooks.signal });
      for (const ci of group.members) {
        if (hooks.signal.aborted) return;
        const session = base.fork(configs[ci].policy, budgetOf(configs[ci]));
        try {
          await session.compress();
          await fn(ci, session);
        } catch (err) {
          if (!hooks.signal.aborted) throw err;
        } finally {
          session.dispose();
        }
      }
    } finally {
      base.dispose();
    }
  }
}

/** Runs the evaluation. Stops between cases when the signal aborts and returns what was measured so far. */
export async function runEval(engine: Engine, text: string, s: EvalSettings, hooks: EvalHooks): Promise<EvalResults> {
  const configs = configsFor(s.policies, s.ratios);
  const retrievalTasks = s.tasks.filter((t): t is RetrievalTaskName => t !== 'ppl');
  const doPpl = s.tasks.includes('ppl');
  const ids = doPpl ? encodeLong(engine, text, { addSpecialTokens: false }) : [];
  const starts = doPpl ? windowStarts(ids.length, s.context + s.target, s.windows) : [];
  if (doPpl) checkContext(engine, s.context + s.target, '--context + --target');
  for (const length of s.lengths) if (retrievalTasks.length) checkContext(engine, length + 8, `--lengths ${length}`);

  const cellsPerTask = s.lengths.length * s.depths.length * s.cases;
  hooks.onStart(configs.length * (starts.length + retrievalTasks.length * cellsPerTask));

  const results: EvalResults = {
    model: engine.label,
    settings: s,
    interrupted: false,
    perplexity: [],
    retrieval: [],
    retrievalKept: [],
  };

  // perplexity: per window, every config sees the same context and target; a window counts only once every config
  // has scored it, so partial results after Ctrl-C still compare like with like
  const ppl = configs.map((config) => ({ config, windows: 0, tokens: 0, nll: 0, kept: 0 }));
  for (const [w, start] of starts.entries()) {
    if (hooks.signal.aborted) break;
    const window: { nll: number; count: number; kept: number }[] = [];
    await forEachConfig(engine, ids.slice(start, start + s.context), configs, hooks, async (ci, session) => {
      hooks.onStep(`ppl window ${w + 1}/${starts.length} ${configs[ci].label}`);
      const st = session.stats();
      const scored = await session.score(ids.slice(start + s.context, start + s.context + s.target), {
        signal: hooks.signal,
      });
      window[ci] = { ...scored, kept: st.entries / st.fullEntries };
    });
    if (hooks.signal.aborted) break;
    for (const [ci, acc] of ppl.entries()) {
      acc.windows++;
      acc.tokens += window[ci].count;
      acc.nll += window[ci].nll;
      acc.kept += window[ci].kept;
    }
  }
  results.perplexity = ppl
    .filter((a) => a.windows > 0)
    .map((a) => ({
      config: a.config,
      windows: a.windows,
      tokens: a.tokens,
      nll: a.nll,
      ppl: Math.exp(a.nll / a.tokens),
      keptFraction: a.kept / a.windows,
    }));

  // retrieval: each case is generated once and run under every config
  if (retrievalTasks.length > 0) {
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
        for (const depth of s.depths) {
          for (let index = 0; index < s.cases; index++) {
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
              const key = `${config.label}|${task}|${contextTokens}|${depth}`;
              let cell = cells.get(key);
              if (!cell) {
                cell = { config, task, contextTokens, depth, cases: 0, passed: 0 };
                cells.set(key, cell);
              }
              cell.cases++;
              if (outcome[ci].passed) cell.passed++;
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
  return results;
}

function accuracy(rows: RetrievalResult[]): number | null {
  const cases = rows.reduce((a, r) => a + r.cases, 0);
  return cases === 0 ? null : rows.reduce((a, r) => a + r.passed, 0) / cases;
}

/** policy × budget × metric, plus per-length accuracy tables. */
export function evalTables(r: EvalResults): Table[] {
  const configs = configsFor(r.settings.policies, r.settings.ratios);
  const tasks = r.settings.tasks;
  const retrievalTasks = tasks.filter((t): t is RetrievalTaskName => t !== 'ppl');
  const fullPpl = r.perplexity.find((p) => p.config.policy === 'full')?.ppl;
  const columns = ['policy', 'ratio', 'kept'];
  if (tasks.includes('ppl')) columns.push('ppl', 'Δppl vs full');
  for (const t of retrievalTasks) columns.push(`${t} acc`);
  const rows = configs.map((config) => {
    const p = r.perplexity.find((x) => x.config.label === config.label);
    const kept = p?.keptFraction ?? r.retrievalKept.find((k) => k.config.label === config.label)?.keptFraction ?? null;
    const row: (string | number | null)[] = [config.policy, config.ratio, kept];
    if (tasks.includes('ppl')) row.push(p?.ppl ?? null, p && fullPpl !== undefined ? p.ppl - fullPpl : null);
    for (const t of retrievalTasks) {
      row.push(accuracy(r.retrieval.filter((x) => x.task === t && x.config.label === config.label)));
    }
    return row;
  });
  const tables: Table[] = [{ title: 'Summary', columns, rows }];
  for (const t of retrievalTasks) {
    tables.push({
      title: `${t} accuracy by context length (all depths)`,
      columns: ['policy', 'ratio', ...r.settings.lengths.map((l) => `${l} tok`)],
      rows: configs.map((config) => [
        config.policy,
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
        config.policy,
        config.ratio,
        ...r.settings.depths.map((d) =>
          accuracy(r.retrieval.filter((x) => x.task === t && x.config.label === config.label && x.depth === d)),
        ),
      ]),
    });
  }
  return tables;
}

/** One line per policy against the ratio; the full cache as a dashed flat line. */
export function evalCharts(r: EvalResults): { name: string; chart: LineChart }[] {
  const ratios = r.settings.ratios;
  const policies = r.settings.policies.filter((p) => p !== 'full');
  const xs = [0, ...ratios];
  const charts: { name: string; chart: LineChart }[] = [];
  const seriesFor = (value: (config: Config) => number | null): Series[] => {
    const out: Series[] = policies.map((policy) => ({
      name: policy,
      points: ratios.map((ratio) => [ratio, value({ policy, ratio, label: budgetLabel(policy, { ratio }) })]),
    }));
    if (r.settings.policies.includes('full')) {
      const full = value({ policy: 'full', ratio: 0, label: 'full' });
      out.push({
        name: 'full cache',
        role: 'reference',
        points: [
          [Math.min(...xs), full],
          [Math.max(...xs), full],
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
    const header = `# semanticache eval\n\nmodel: ${results.model}${results.interrupted ? ' — **interrupted, partial results**' : ''}\n\n`;
    const markdown = header + tables.map((t) => toMarkdown(t)).join('\n');
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
