import {
  type Config,
  configName,
  configsFor,
  type EvalResults,
  isRetrievalTask,
  type PerplexityResult,
  PPL_TASKS,
  type PplTask,
  type RetrievalResult,
} from './harness.js';
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
} from './stats.js';
import type { LineChart, Series } from './svg.js';
import { type Table, toMarkdown } from './table.js';
import { RETRIEVAL_TASKS, type RetrievalTaskName } from './tasks.js';

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

/** Bootstrap options of every interval in the report: seeded by the settings' seed, so a report is reproducible. */
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

/** The report: model, what was measured (after an abort: how much of each cell), how to read it, then the tables. */
export function evalMarkdown(r: EvalResults, tables: Table[] = evalTables(r)): string {
  const header = `# semanticache eval\n\nmodel: ${r.model}${r.interrupted ? ' — **interrupted, partial results**' : ''}\n\n${coverageMarkdown(r)}${methodNote(r)}`;
  return header + tables.map((t) => toMarkdown(t)).join('\n');
}
