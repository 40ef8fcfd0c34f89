import { budgetLabel, checkContext, encodeLong, type SamplingOptions } from '@semanticache/eval';
import {
  BUDGET_OPTIONS,
  type CommandSpec,
  helpText,
  MODEL_OPTIONS,
  numberOpt,
  OUTPUT_OPTIONS,
  parseCommand,
  stringOpt,
} from '../args.js';
import { readTextFile } from '../assets.js';
import { type CliContext, note } from '../context.js';
import { EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../errors.js';
import { aboveBudgetNote, budgetOpt, formatBytes, isQuiet, openEngine, policyOpt, statsForJson } from './shared.js';

export const SAMPLING_OPTIONS = {
  'max-tokens': { type: 'string', arg: 'N', help: 'tokens to generate', default: '128' },
  temperature: { type: 'string', arg: 'T', help: 'sampling temperature; 0 = greedy', default: '0.8' },
  'top-k': { type: 'string', arg: 'K', help: 'sample from the K most likely tokens; 0 = off', default: '40' },
  'top-p': { type: 'string', arg: 'P', help: 'nucleus sampling mass; 1 = off', default: '0.95' },
  seed: { type: 'string', arg: 'N', help: 'sampling seed', default: '0' },
  stop: { type: 'string', arg: 'TEXT', multiple: true, help: 'stop when the output contains TEXT (repeatable)' },
} as const satisfies CommandSpec['options'];

export const generateSpec: CommandSpec = {
  name: 'run',
  aliases: ['generate'],
  short: 'generate text from a prompt with a compressed cache (streamed)',
  summary:
    'Generate a continuation of a prompt (argument, --file, or stdin) with a compressed cache, streaming the text.',
  usage: 'semanticache run [PROMPT] [--file FILE] [options]',
  maxPositionals: 1,
  options: {
    file: { type: 'string', arg: 'FILE', help: 'read the prompt from FILE' },
    ...BUDGET_OPTIONS,
    policy: { ...BUDGET_OPTIONS.policy, default: 'semanticache' },
    ratio: { ...BUDGET_OPTIONS.ratio, default: '0.75' },
    ...SAMPLING_OPTIONS,
    ...MODEL_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  examples: [
    'semanticache run "Once upon a time" --max-tokens 64',
    'semanticache run --file chapter.txt --policy snapkv --ratio 0.5 --temperature 0',
    'cat notes.txt | semanticache run --json',
  ],
};

export function samplingOpts(
  values: Record<string, unknown>,
  defaults: Partial<SamplingOptions> = {},
): SamplingOptions {
  const v = values as Parameters<typeof numberOpt>[0];
  const stop = values.stop as string[] | undefined;
  if (stop?.some((s) => s.length === 0)) throw new UsageError('--stop: the stop text must not be empty');
  return {
    maxTokens: numberOpt(v, 'max-tokens', defaults.maxTokens ?? 128, { min: 1, integer: true }),
    temperature: numberOpt(v, 'temperature', defaults.temperature ?? 0.8, { min: 0, max: 100 }),
    topK: numberOpt(v, 'top-k', defaults.topK ?? 40, { min: 0, integer: true }),
    topP: numberOpt(v, 'top-p', defaults.topP ?? 0.95, { min: 0, max: 1, exclusiveMax: false }),
    seed: numberOpt(v, 'seed', defaults.seed ?? 0, { min: 0, max: 2 ** 32 - 1, integer: true }),
    stop: stop ?? [],
  };
}

export async function generateCommand(ctx: CliContext, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(generateSpec, argv);
  if (values.help) {
    ctx.stdout.write(helpText(generateSpec));
    return EXIT_OK;
  }
  const file = stringOpt(values, 'file');
  if (file !== undefined && positionals.length > 0)
    throw new UsageError('give the prompt as an argument or --file, not both');
  const policy = policyOpt(values, 'semanticache');
  const budget = policy === 'full' ? { ratio: 0 } : budgetOpt(values);
  const sampling = samplingOpts(values);
  const quiet = isQuiet(values);
  let prompt: string | undefined = file !== undefined ? readTextFile(file, '--file') : positionals[0];
  if (prompt === undefined) prompt = await ctx.readStdin();
  if (prompt === undefined || prompt.length === 0) {
    throw new UsageError('no prompt: give it as an argument, with --file, or on stdin');
  }

  const engine = await openEngine(ctx, values);
  try {
    const ids = encodeLong(engine, prompt);
    checkContext(engine, ids.length + sampling.maxTokens, 'the prompt plus --max-tokens');
    const session = engine.session(policy, budget);
    try {
      const t0 = performance.now();
      await session.prefill(ids, { signal: ctx.signal });
      const t1 = performance.now();
      // Ctrl-C stops the prefill between blocks: report what was really fed, and leave that partial cache as it is
      const prefilled = session.stats().tokens;
      const interruptedInPrefill = ctx.signal.aborted;
      const map = interruptedInPrefill ? undefined : await session.compress();
      const t2 = performance.now();
      const above = aboveBudgetNote(map, engine.numLayers * engine.numKvHeads);
      if (above) note(ctx, quiet, above);
      let text = '';
      const tokens: number[] = [];
      let firstAt = 0;
      if (!interruptedInPrefill) {
        for await (const tok of session.generate([], sampling, { signal: ctx.signal })) {
          if (tokens.length === 0) firstAt = performance.now();
          tokens.push(tok.tokenId);
          text += tok.text;
          if (!values.json) ctx.stdout.write(tok.text);
        }
      }
      const t3 = performance.now();
      const stats = session.stats();
      const interrupted = ctx.signal.aborted;
      // decode speed excludes the first token, whose step also pays for graph warm-up
      const decodeSeconds = tokens.length > 1 ? (t3 - firstAt) / 1000 : Number.NaN;
      const result = {
        model: engine.label,
        policy,
        budget,
        /** the prompt's tokens */
        promptTokens: ids.length,
        /** the prompt's tokens actually fed: fewer when Ctrl-C stopped the prefill */
        prefilledTokens: prefilled,
        completionTokens: tokens.length,
        text,
        tokenIds: tokens,
        interrupted,
        /** where Ctrl-C stopped the command; null when it ran to the end */
        interruptedDuring: interruptedInPrefill ? 'prefill' : interrupted ? 'generation' : null,
        /** whether the cache was compressed: never for 'full', nor after an interrupted prefill */
        compressed: map !== undefined,
        cache: statsForJson(stats),
        timings: {
          prefillMs: t1 - t0,
          compressMs: t2 - t1,
          prefillTokensPerSecond: prefilled / ((t1 - t0) / 1000),
          decodeTokensPerSecond: tokens.length > 1 ? (tokens.length - 1) / decodeSeconds : null,
        },
      };
      if (values.json) {
        ctx.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        const cache = `cache ${stats.entries}/${stats.fullEntries} entries, ${formatBytes(stats.bytes)} of ${formatBytes(stats.fullBytes)}`;
        const prefill = `prefill ${result.timings.prefillTokensPerSecond.toFixed(0)} tok/s`;
        ctx.stdout.write('\n');
        note(
          ctx,
          quiet,
          interruptedInPrefill
            ? `[${budgetLabel(policy, budget)}] interrupted during prefill: fed ${prefilled} of ${ids.length} prompt tokens, generated nothing; compression skipped (interrupted); ${cache}; ${prefill}`
            : `[${budgetLabel(policy, budget)}] ${ids.length} prompt + ${tokens.length} generated tokens; ${cache}; ${prefill}, decode ${result.timings.decodeTokensPerSecond?.toFixed(1) ?? '—'} tok/s${interrupted ? ' (interrupted)' : ''}`,
        );
      }
      return interrupted ? EXIT_INTERRUPTED : EXIT_OK;
    } finally {
      session.dispose();
    }
  } finally {
    await engine.dispose();
  }
}
