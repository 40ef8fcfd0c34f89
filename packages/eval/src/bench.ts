import { budgetLabel, checkContext, type Engine, type PolicyName } from './engine.js';
import { ownName, type SettingName, SettingsError } from './errors.js';
import { encodeLong } from './long-text.js';
import type { LineChart } from './svg.js';
import type { Table } from './table.js';

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
    // a prefill stopped by the signal left a partial cache: nothing to compress or measure
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

export interface BenchHooks {
  /** aborted: the run stops after the cell it is in and returns the cells measured */
  signal: AbortSignal;
  onStep(done: number, total: number, detail: string): void;
  /** how errors name a BenchSettings field (default: the field's name) */
  settingName?: SettingName;
}

/**
 * Prefill, compress and decode speed, KV bytes and RSS per context length × policy, each cell a fresh session on the
 * first tokens of `text`. With `repeats` > 1 the whole grid runs again and each figure is a median over the runs.
 */
export async function runBench(
  engine: Engine,
  text: string,
  s: BenchSettings,
  hooks: BenchHooks,
): Promise<{ rows: BenchRow[]; interrupted: boolean }> {
  const longest = Math.max(...s.lengths);
  const name = hooks.settingName ?? ownName;
  checkContext(engine, longest + s.decodeTokens, `the longest ${name('lengths')} plus ${name('decodeTokens')}`);
  const ids = encodeLong(engine, text, { addSpecialTokens: false });
  if (ids.length < longest) {
    throw new SettingsError(`the text has ${ids.length} tokens, fewer than ${name('lengths')} ${longest}`);
  }
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
