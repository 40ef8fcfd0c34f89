import { type Budget, budgetLabel, type CacheStats, type Engine, encodeLong, warmUp } from '@semanticache/eval';
import type { PolicyName } from '@semanticache/kv-cache';
import {
  BUDGET_OPTIONS,
  type CommandSpec,
  helpText,
  MODEL_OPTIONS,
  OUTPUT_OPTIONS,
  parseCommand,
  stringOpt,
} from '../args.js';
import { DEMO_TEXT_PATH, readTextFile } from '../assets.js';
import { type CliContext, note, progressFor } from '../context.js';
import { EXIT_INTERRUPTED, EXIT_OK } from '../errors.js';
import { SAMPLING_OPTIONS, samplingOpts } from './generate.js';
import { aboveBudgetNote, budgetOpt, formatBytes, isQuiet, openEngine, policyOpt, statsForJson } from './shared.js';

export const demoSpec: CommandSpec = {
  name: 'demo',
  short: 'full cache vs SemantiCache on a long built-in text, side by side',
  summary:
    'Continue a long built-in text twice, with the full cache and with a compressed one, and show both side by side: cache entries and bytes, speed, and the two continuations.',
  usage: 'semanticache demo [options]',
  maxPositionals: 0,
  options: {
    text: { type: 'string', arg: 'FILE', help: 'the long text to continue (default: ~4.5K tokens of a held-out book)' },
    policy: { ...BUDGET_OPTIONS.policy, default: 'semanticache' },
    ratio: { ...BUDGET_OPTIONS.ratio, default: '0.75' },
    'max-entries': BUDGET_OPTIONS['max-entries'],
    ...SAMPLING_OPTIONS,
    'max-tokens': { ...SAMPLING_OPTIONS['max-tokens'], default: '48' },
    temperature: { ...SAMPLING_OPTIONS.temperature, default: '0' },
    ...MODEL_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  examples: ['semanticache demo', 'semanticache demo --ratio 0.9 --temperature 0.7 --seed 3'],
};

export interface DemoRun {
  label: string;
  policy: PolicyName;
  budget: Budget;
  cache: CacheStats;
  prefillTokensPerSecond: number;
  compressMs: number;
  /** heads whose protected entries exceeded the budget (kept, nothing else compressed) */
  headsAboveBudget: number;
  decodeTokensPerSecond: number | null;
  tokens: number;
  text: string;
}

/** Word-wraps `text` to `width` columns, keeping the text's own line breaks. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/(?<=\s)/)) {
      let w = word;
      while (w.length > width) {
        if (line) lines.push(line.trimEnd());
        lines.push(w.slice(0, width));
        w = w.slice(width);
        line = '';
      }
      if ((line + w).trimEnd().length > width) {
        lines.push(line.trimEnd());
        line = w.trimStart();
      } else line += w;
    }
    lines.push(line.trimEnd());
  }
  return lines;
}

export function sideBySide(left: string[], right: string[], width: number, gap = ' │ '): string {
  const rows = Math.max(left.length, right.length);
  const out: string[] = [];
  for (let i = 0; i < rows; i++) out.push(`${(left[i] ?? '').padEnd(width)}${gap}${right[i] ?? ''}`.trimEnd());
  return out.join('\n') + '\n';
}

export function renderDemo(
  model: string,
  prompt: { tokens: number; tail: string },
  runs: [DemoRun, DemoRun],
  columns: number,
): string {
  const col = Math.max(28, Math.floor((Math.min(columns, 160) - 3) / 2));
  const labelWidth = 18;
  const [a, b] = runs;
  const metric = (name: string, x: string, y: string) =>
    `${name.padEnd(labelWidth)}${x.padEnd(col - labelWidth)} │ ${y}`.trimEnd();
  const pct = (c: CacheStats) => `${((100 * c.entries) / Math.max(1, c.fullEntries)).toFixed(1)}%`;
  const speed = (v: number | null) => (v === null ? '—' : `${v.toFixed(1)} tok/s`);
  const lines = [
    `SemantiCache demo — ${model}, ${prompt.tokens}-token prompt`,
    `the prompt ends: “…${prompt.tail}”`,
    '',
    metric('', a.label, b.label),
    metric('', '─'.repeat(Math.min(col - labelWidth, 24)), '─'.repeat(24)),
    metric(
      'cache entries',
      `${a.cache.entries.toLocaleString('en-US')} (${pct(a.cache)})`,
      `${b.cache.entries.toLocaleString('en-US')} (${pct(b.cache)})`,
    ),
    metric('KV bytes', formatBytes(a.cache.bytes), formatBytes(b.cache.bytes)),
    metric('prefill', speed(a.prefillTokensPerSecond), speed(b.prefillTokensPerSecond)),
    metric('compress', `${a.compressMs.toFixed(0)} ms`, `${b.compressMs.toFixed(0)} ms`),
    metric('decode', speed(a.decodeTokensPerSecond), speed(b.decodeTokensPerSecond)),
    '',
    sideBySide(
      [`${a.label} continues:`, ...wrap(a.text.replace(/^\s*\n/, ''), col)],
      [`${b.label} continues:`, ...wrap(b.text.replace(/^\s*\n/, ''), col)],
      col,
    ),
  ];
  return lines.join('\n');
}

export async function runDemo(
  engine: Engine,
  ids: number[],
  policy: PolicyName,
  budget: Budget,
  sampling: ReturnType<typeof samplingOpts>,
  hooks: { signal: AbortSignal; progress: ReturnType<typeof progressFor> },
): Promise<DemoRun[]> {
  await warmUp(engine, ids);
  const runs: DemoRun[] = [];
  for (const [p, b] of [
    ['full', { ratio: 0 }],
    [policy, budget],
  ] as [PolicyName, Budget][]) {
    if (hooks.signal.aborted) break;
    const label = p === 'full' ? 'full cache' : budgetLabel(p, b);
    const bar = hooks.progress(`${label}: prefill`, ids.length);
    const session = engine.session(p, b);
    try {
      const t0 = performance.now();
      await session.prefill(ids, { signal: hooks.signal, onProgress: (done) => bar.set(done) });
      const t1 = performance.now();
      bar.finish();
      // a prefill stopped by Ctrl-C left a partial cache: neither compressed nor reported as a run
      if (hooks.signal.aborted) break;
      const map = await session.compress();
      const t2 = performance.now();
      let text = '';
      let tokens = 0;
      let firstAt = 0;
      const gen = hooks.progress(`${label}: decode`, sampling.maxTokens);
      for await (const tok of session.generate([], sampling, { signal: hooks.signal })) {
        if (tokens === 0) firstAt = performance.now();
        tokens++;
        text += tok.text;
        gen.tick();
      }
      const t3 = performance.now();
      gen.finish();
      runs.push({
        label,
        policy: p,
        budget: b,
        cache: session.stats(),
        prefillTokensPerSecond: ids.length / ((t1 - t0) / 1000),
        compressMs: t2 - t1,
        headsAboveBudget: map?.headsAboveBudget ?? 0,
        decodeTokensPerSecond: tokens > 1 ? (tokens - 1) / ((t3 - firstAt) / 1000) : null,
        tokens,
        text,
      });
    } catch (err) {
      if (!hooks.signal.aborted) throw err;
    } finally {
      session.dispose();
    }
  }
  return runs;
}

export async function demoCommand(ctx: CliContext, argv: string[]): Promise<number> {
  const { values } = parseCommand(demoSpec, argv);
  if (values.help) {
    ctx.stdout.write(helpText(demoSpec));
    return EXIT_OK;
  }
  const policy = policyOpt(values, 'semanticache');
  const budget = budgetOpt(values);
  const sampling = samplingOpts(values, { maxTokens: 48, temperature: 0 });
  const text = readTextFile(stringOpt(values, 'text') ?? DEMO_TEXT_PATH, '--text');
  const quiet = isQuiet(values);
  const engine = await openEngine(ctx, values);
  try {
    const all = encodeLong(engine, text);
    // keep the end of a text longer than the context: the continuation follows it
    const room = engine.maxContext - sampling.maxTokens;
    const ids = all.length > room ? all.slice(all.length - room) : all;
    const runs = await runDemo(engine, ids, policy, budget, sampling, {
      signal: ctx.signal,
      progress: progressFor(ctx, quiet),
    });
    const above = aboveBudgetNote(
      runs.find((r) => r.headsAboveBudget > 0),
      engine.numLayers * engine.numKvHeads,
    );
    if (above) note(ctx, quiet, above);
    if (values.json) {
      ctx.stdout.write(
        `${JSON.stringify({
          model: engine.label,
          promptTokens: ids.length,
          interrupted: ctx.signal.aborted,
          runs: runs.map((r) => ({ ...r, cache: statsForJson(r.cache) })),
        })}\n`,
      );
    } else if (runs.length === 2) {
      // the last words of the prompt, from a word boundary
      const tail = engine
        .decode(ids.slice(-24))
        .replace(/\s+/g, ' ')
        .replace(/^\S*\s/, '')
        .trim();
      ctx.stdout.write(
        renderDemo(engine.label, { tokens: ids.length, tail }, [runs[0], runs[1]], ctx.stdout.columns ?? 100),
      );
    } else {
      for (const r of runs)
        ctx.stdout.write(`${r.label}: ${r.cache.entries} entries, ${formatBytes(r.cache.bytes)}\n${r.text}\n`);
    }
    return ctx.signal.aborted ? EXIT_INTERRUPTED : EXIT_OK;
  } finally {
    await engine.dispose();
  }
}
