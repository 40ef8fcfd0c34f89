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
import { budgetLabel, type Engine, POLICIES, type PolicyName } from '../engine';
import { EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../errors';
import { encodeLong } from '../long-text';
import { writeReport } from '../report';
import type { LineChart } from '../svg';
import { type Table, toMarkdown, toRecords } from '../table';
import { checkContext, checkRatioFits, isQuiet, openEngine, parseRatio } from './shared';

export const benchSpec: CommandSpec = {
  name: 'bench',
  short: 'prefill/decode speed and KV bytes vs context length per policy',
  summary:
    'Prefill and decode speed, KV-cache bytes and process RSS against context length, per policy. Writes a markdown table, JSON and SVG/PNG plots.',
  usage: 'semanticache bench [options]',
  maxPositionals: 0,
  options: {
    lengths: { type: 'string', arg: 'LIST', help: 'context lengths in tokens', default: '1024,2048,4096' },
    policies: {
      type: 'string',
      arg: 'LIST',
      help: POLICIES.join(', '),
      default: 'semanticache,streaming-llm,snapkv,full',
    },
    ratio: {
      type: 'string',
      arg: 'R',
      help: 'fraction of entries removed by the compressing policies',
      default: '0.75',
    },
    'decode-tokens': { type: 'string', arg: 'N', help: 'greedy tokens decoded after compression', default: '32' },
    repeats: { type: 'string', arg: 'N', help: 'runs of the whole grid; figures are medians over them', default: '1' },
    text: { type: 'string', arg: 'FILE', help: 'text the contexts are cut from (default: the bundled held-out slice)' },
    out: {
      type: 'string',
      arg: 'DIR',
      help: 'where to write bench.md, bench.json and the plots',
      default: 'semanticache-bench',
    },
    ...MODEL_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  examples: ['semanticache bench --lengths 512,1024,2048,4096,8192 --decode-tokens 64'],
};

export interface BenchRow {
  policy: PolicyName;
  ratio: number;
  contextTokens: number;
  /** samples the figures are medians of */
  repeats: number;
  prefillTokensPerSecond: number;
  compressMs: number;
  decodeTokens: number;
  decodeTokensPerSecond: number;
  entries: number;
  fullEntries: number;
  kvBytes: number;
  fullKvBytes: number;
  rssBytes: number;
}

export interface BenchSettings {
  lengths: number[];
  policies: PolicyName[];
  ratio: number;
  decodeTokens: number;
  repeats: number;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** One short prefill and a few decode steps, so the first measured run does not pay for warm-up. */
export async function warmUp(engine: Engine, ids: number[]): Promise<void> {
  const session = engine.session('full', { ratio: 0 });
  try {
    await session.prefill(ids.slice(0, 64));
    const greedy = { maxTokens: 4, temperature: 0, topK: 0, topP: 1, seed: 0, stop: [] };
    for await (const _ of session.generate([], greedy)) {
      // only the work matters
    }
  } finally {
    session.dispose();
  }
}

/** One cell: prefill, compress, decode; undefined when interrupted. */
async function measure(
  engine: Engine,
  ids: number[],
  policy: PolicyName,
  ratio: number,
  decodeTokens: number,
  signal: AbortSignal,
): Promise<BenchRow | undefined> {
  const session = engine.session(policy, { ratio });
  try {
    const t0 = performance.now();
    await session.prefill(ids, { signal });
    const t1 = performance.now();
    // a prefill stopped by Ctrl-C left a partial cache: nothing to compress or measure
    if (signal.aborted) return undefined;
    await session.compress();
    const t2 = performance.now();
    const greedy = { maxTokens: decodeTokens, temperature: 0, topK: 0, topP: 1, seed: 0, stop: [] };
    const stepMs: number[] = [];
    let last = performance.now();
    for await (const _ of session.generate([], greedy, { signal })) {
      const now = performance.now();
      stepMs.push(now - last);
      last = now;
    }
    if (signal.aborted) return undefined;
    const st = session.stats();
    return {
      policy,
      ratio,
      contextTokens: ids.length,
      repeats: 1,
      prefillTokensPerSecond: ids.length / ((t1 - t0) / 1000),
      compressMs: t2 - t1,
      decodeTokens: stepMs.length,
      // median step time: robust to the odd slow step; the first step is the prefill's, not a decode
      decodeTokensPerSecond: 1000 / median(stepMs.slice(1)),
      entries: st.entries,
      fullEntries: st.fullEntries,
      kvBytes: st.bytes,
      fullKvBytes: st.fullBytes,
      rssBytes: process.memoryUsage().rss,
    };
  } catch (err) {
    if (signal.aborted) return undefined;
    throw err;
  } finally {
    session.dispose();
  }
}

export async function runBench(
  engine: Engine,
  text: string,
  s: BenchSettings,
  hooks: { signal: AbortSignal; onStep(done: number, total: number, detail: string): void },
): Promise<{ rows: BenchRow[]; interrupted: boolean }> {
  const longest = Math.max(...s.lengths);
  checkContext(engine, longest + s.decodeTokens, 'the longest --lengths plus --decode-tokens');
  const ids = encodeLong(engine, text, { addSpecialTokens: false });
  if (ids.length < longest) throw new UsageError(`the text has ${ids.length} tokens, fewer than --lengths ${longest}`);
  await warmUp(engine, ids);
  // every repeat runs the whole grid, so a burst of load on a shared machine hits one sample of every cell, and the
  // reported figures are medians over the repeats
  const samples = new Map<string, BenchRow[]>();
  const total = s.repeats * s.lengths.length * s.policies.length;
  let done = 0;
  outer: for (let repeat = 0; repeat < s.repeats; repeat++) {
    for (const length of s.lengths) {
      for (const policy of s.policies) {
        if (hooks.signal.aborted) break outer;
        const ratio = policy === 'full' ? 0 : s.ratio;
        hooks.onStep(done, total, `${length} tok ${budgetLabel(policy, { ratio })}`);
        const row = await measure(engine, ids.slice(0, length), policy, ratio, s.decodeTokens, hooks.signal);
        if (!row) break outer;
        const key = `${length}|${policy}`;
        samples.set(key, [...(samples.get(key) ?? []), row]);
        done++;
      }
    }
  }
  hooks.onStep(done, total, '');
  const rows = [...samples.values()].map((runs) => ({
    ...runs[0],
    repeats: runs.length,
    prefillTokensPerSecond: median(runs.map((r) => r.prefillTokensPerSecond)),
    compressMs: median(runs.map((r) => r.compressMs)),
    decodeTokensPerSecond: median(runs.map((r) => r.decodeTokensPerSecond)),
    rssBytes: Math.max(...runs.map((r) => r.rssBytes)),
  }));
  return { rows, interrupted: hooks.signal.aborted };
}

const MIB = 1024 * 1024;

export function benchTable(rows: BenchRow[]): Table {
  // speed-ups are against the full cache at the same context length, measured in the same run
  const fullDecode = (r: BenchRow) =>
    rows.find((f) => f.policy === 'full' && f.contextTokens === r.contextTokens)?.decodeTokensPerSecond;
  return {
    title: 'Speed and memory by context length',
    columns: [
      'context',
      'policy',
      'ratio',
      'prefill tok/s',
      'compress ms',
      'decode tok/s',
      'decode × full',
      'KV entries',
      'KV MiB',
      'full KV MiB',
      'RSS MiB',
    ],
    rows: rows.map((r) => [
      r.contextTokens,
      r.policy,
      r.ratio,
      r.prefillTokensPerSecond,
      r.compressMs,
      r.decodeTokensPerSecond,
      fullDecode(r) === undefined ? null : r.decodeTokensPerSecond / fullDecode(r)!,
      r.entries,
      r.kvBytes / MIB,
      r.fullKvBytes / MIB,
      r.rssBytes / MIB,
    ]),
  };
}

export function benchCharts(rows: BenchRow[], model: string): { name: string; chart: LineChart }[] {
  const policies = [...new Set(rows.map((r) => r.policy))];
  const series = (value: (r: BenchRow) => number) =>
    policies.map((policy) => ({
      name:
        policy === 'full' ? 'full cache' : budgetLabel(policy, { ratio: rows.find((r) => r.policy === policy)!.ratio }),
      role: policy === 'full' ? ('baseline' as const) : ('measured' as const),
      points: rows.filter((r) => r.policy === policy).map((r) => [r.contextTokens, value(r)] as [number, number]),
    }));
  return [
    {
      name: 'decode',
      chart: {
        title: `Decode speed (${model})`,
        xLabel: 'context length (tokens)',
        yLabel: 'decode tokens/s',
        yInclude: [0],
        series: series((r) => r.decodeTokensPerSecond),
      },
    },
    {
      name: 'prefill',
      chart: {
        title: `Prefill speed (${model})`,
        xLabel: 'context length (tokens)',
        yLabel: 'prefill tokens/s',
        yInclude: [0],
        series: series((r) => r.prefillTokensPerSecond),
      },
    },
    {
      name: 'memory',
      chart: {
        title: `KV-cache size after compression (${model})`,
        xLabel: 'context length (tokens)',
        yLabel: 'KV cache MiB',
        yInclude: [0],
        series: series((r) => r.kvBytes / MIB),
      },
    },
  ];
}

export async function benchCommand(ctx: CliContext, argv: string[]): Promise<number> {
  const { values } = parseCommand(benchSpec, argv);
  if (values.help) {
    ctx.stdout.write(helpText(benchSpec));
    return EXIT_OK;
  }
  const settings: BenchSettings = {
    lengths: [
      ...new Set(
        listOpt(values, 'lengths', [1024, 2048, 4096], (s, l) => parseNumber(s, l, { min: 8, integer: true })),
      ),
    ].sort((a, b) => a - b),
    policies: [
      ...new Set(
        listOpt<PolicyName>(values, 'policies', ['semanticache', 'streaming-llm', 'snapkv', 'full'], choice(POLICIES)),
      ),
    ],
    ratio: parseRatio(stringOpt(values, 'ratio', '0.75'), '--ratio'),
    decodeTokens: numberOpt(values, 'decode-tokens', 32, { min: 2, integer: true }),
    repeats: numberOpt(values, 'repeats', 1, { min: 1, integer: true }),
  };
  if (settings.policies.some((p) => p !== 'full')) checkRatioFits(settings.lengths[0], settings.ratio, '--lengths');
  const textFile = stringOpt(values, 'text');
  const text = textFile !== undefined ? readTextFile(textFile, '--text') : readFileSync(VAL_SLICE_PATH, 'utf8');
  const outDir = stringOpt(values, 'out', 'semanticache-bench');
  const quiet = isQuiet(values);
  const engine = await openEngine(ctx, values);
  try {
    const progress = progressFor(ctx, quiet)(
      'bench',
      settings.repeats * settings.lengths.length * settings.policies.length,
    );
    const { rows, interrupted } = await runBench(engine, text, settings, {
      signal: ctx.signal,
      onStep: (done, _total, detail) => progress.set(done, detail),
    });
    progress.finish(interrupted ? 'bench interrupted: reporting what was measured' : undefined);
    const table = benchTable(rows);
    const markdown = `# semanticache bench\n\nmodel: ${engine.label}${interrupted ? ' — **interrupted, partial results**' : ''}\n\n${toMarkdown(table)}`;
    const json = { model: engine.label, settings, interrupted, rows, table: toRecords(table) };
    const written = writeReport(outDir, 'bench', {
      markdown,
      json,
      charts: rows.length > 0 ? benchCharts(rows, engine.label) : [],
    });
    if (values.json) ctx.stdout.write(`${JSON.stringify({ ...json, files: written.files, notes: written.notes })}\n`);
    else ctx.stdout.write(markdown);
    note(ctx, quiet, `wrote ${written.files.join(', ')}`);
    for (const n of written.notes) note(ctx, quiet, n);
    return interrupted ? EXIT_INTERRUPTED : EXIT_OK;
  } finally {
    await engine.dispose();
  }
}
