import { readFileSync } from 'node:fs';
import {
  type BenchSettings,
  benchCharts,
  benchTable,
  runBench,
  toMarkdown,
  toRecords,
  writeReport,
} from '@semanticache/eval';
import { POLICIES, type PolicyName } from '@semanticache/kv-cache';
import {
  type CommandSpec,
  choice,
  flagName,
  helpText,
  listOpt,
  MODEL_OPTIONS,
  numberOpt,
  OUTPUT_OPTIONS,
  parseCommand,
  parseNumber,
  stringOpt,
} from '../args.js';
import { readTextFile, VAL_SLICE_PATH } from '../assets.js';
import { type CliContext, note, progressFor } from '../context.js';
import { EXIT_INTERRUPTED, EXIT_OK } from '../errors.js';
import { checkRatioFits, isQuiet, openEngine, parseRatio } from './shared.js';

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
      settingName: flagName,
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
