import { readFileSync } from 'node:fs';
import {
  type DepthSpec,
  EVAL_TASKS,
  type EvalSettings,
  type EvalTask,
  evalCharts,
  evalMarkdown,
  evalTables,
  isPplTask,
  isRetrievalTask,
  parsePolicySpec,
  policySpecNames,
  runEval,
  specName,
  toRecords,
  writeReport,
} from '@semanticache/eval';
import { POLICIES } from '@semanticache/kv-cache';
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
import { EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../errors.js';
import { checkRatioFits, isQuiet, openEngine, parseRatio } from './shared.js';

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
      settingName: flagName,
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
