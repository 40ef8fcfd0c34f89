import { writeFileSync } from 'node:fs';
import { DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH } from '@semanticache/chunker';
import {
  clustersFromTrace,
  type Engine,
  encodeLong,
  type InspectPage,
  type LayerCompression,
  renderInspectHtml,
} from '@semanticache/eval';
import { DEFAULT_RECENT_WINDOW, DEFAULT_SINK_TOKENS } from '@semanticache/kv-cache';
import {
  type CommandSpec,
  choice,
  helpText,
  MODEL_OPTIONS,
  numberOpt,
  OUTPUT_OPTIONS,
  parseCommand,
  stringOpt,
} from '../args.js';
import { DEMO_TEXT_PATH, readTextFile } from '../assets.js';
import { type CliContext, note, progressFor } from '../context.js';
import { EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../errors.js';
import type { Progress } from '../progress.js';
import { isQuiet, openEngine, parseRatio } from './shared.js';

/** τ shown when neither --threshold nor --ratio is given: gsc-cluster's default threshold. */
export const INSPECT_THRESHOLD = 0.8;

export const inspectSpec: CommandSpec = {
  name: 'inspect',
  short: "HTML view of a text's chunks, clusters and cores",
  summary:
    'Compress a text with the semanticache policy and write a self-contained HTML page showing its chunks and, for one layer and head, which tokens merged into which core, with the compression reached per layer and head.',
  usage: 'semanticache inspect [--text FILE] [--layer L] [--head H] [options]',
  maxPositionals: 0,
  options: {
    text: { type: 'string', arg: 'FILE', help: 'text to inspect (default: the bundled demo text)' },
    tokens: { type: 'string', arg: 'N', help: 'inspect the first N tokens of the text', default: '1024' },
    layer: { type: 'string', arg: 'L', help: 'layer whose clusters are shown', default: 'the middle layer' },
    head: { type: 'string', arg: 'H', help: 'KV head whose clusters are shown', default: '0' },
    threshold: {
      type: 'string',
      arg: 'TAU',
      help: 'GSC cosine threshold τ in [-1, 1]: merge what is this similar, however much that is',
      default: String(INSPECT_THRESHOLD),
    },
    ratio: { type: 'string', arg: 'R', help: 'instead of τ: bisect τ per head to remove this fraction of entries' },
    level: { type: 'string', arg: 'LEVEL', help: 'chunk delimiters: sentence | clause', default: 'sentence' },
    'min-chunk': { type: 'string', arg: 'N', help: 'shortest chunk in tokens', default: String(DEFAULT_MIN_LENGTH) },
    'max-chunk': { type: 'string', arg: 'N', help: 'longest chunk in tokens', default: String(DEFAULT_MAX_LENGTH) },
    sinks: { type: 'string', arg: 'N', help: 'first tokens kept raw', default: String(DEFAULT_SINK_TOKENS) },
    window: { type: 'string', arg: 'N', help: 'last tokens kept raw', default: String(DEFAULT_RECENT_WINDOW) },
    out: { type: 'string', arg: 'FILE', help: 'HTML file to write', default: 'semanticache-inspect.html' },
    ...MODEL_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  examples: [
    'semanticache inspect --layer 3 --head 2 --out layer3.html',
    'semanticache inspect --text essay.txt --ratio 0.75',
  ],
};

export interface InspectSettings {
  tokens: number;
  /** undefined: the middle layer */
  layer: number | undefined;
  head: number;
  /** fixed τ, or a ratio that sets a per-head target */
  mode: { threshold: number } | { ratio: number };
  level: 'sentence' | 'clause';
  minChunk: number;
  maxChunk: number;
  sinks: number;
  window: number;
}

export async function buildInspectPage(
  engine: Engine,
  text: string,
  s: InspectSettings,
  hooks: { signal: AbortSignal; onProgress(done: number, total: number): void },
): Promise<InspectPage | undefined> {
  // the middle layer by default: the first layers merge little, so it shows more of what compression does
  const layer = s.layer ?? engine.numLayers >> 1;
  if (layer >= engine.numLayers) {
    throw new UsageError(`--layer: the model has ${engine.numLayers} layers (0–${engine.numLayers - 1})`);
  }
  if (s.head >= engine.numKvHeads) {
    throw new UsageError(`--head: the model has ${engine.numKvHeads} KV heads (0–${engine.numKvHeads - 1})`);
  }
  const ids = encodeLong(engine, text).slice(0, Math.min(s.tokens, engine.maxContext));
  const n = ids.length;
  if (n < 2) throw new UsageError('--text: needs at least two tokens');
  // the trace: the chunks the policy cut and the core every token went into, as the compression did them
  const knobs = {
    trace: true,
    delimiterLevel: s.level,
    minChunkLength: s.minChunk,
    maxChunkLength: s.maxChunk,
    sinkTokens: s.sinks,
    recentWindow: s.window,
    ...('threshold' in s.mode ? { threshold: s.mode.threshold } : {}),
  };
  const session = engine.session('semanticache', { ratio: 'ratio' in s.mode ? s.mode.ratio : 0 }, knobs);
  try {
    await session.prefill(ids, { signal: hooks.signal, onProgress: (done) => hooks.onProgress(done, n + 1) });
    if (hooks.signal.aborted) return undefined;
    const map = await session.compress();
    hooks.onProgress(n + 1, n + 1);
    const trace = map?.trace?.layers[layer];
    if (!trace?.tokenChunks) throw new TypeError('the semanticache policy returned no compression trace');
    const perHead = session.stats().entriesPerHead;
    const layers: LayerCompression[] = Array.from({ length: engine.numLayers }, (_, layer) => ({
      layer,
      full: n,
      kept: perHead.subarray(layer * engine.numKvHeads, (layer + 1) * engine.numKvHeads),
    }));
    const { assignment, coreSizes } = clustersFromTrace(trace.heads[s.head]);
    return {
      title: `SemantiCache inspect — layer ${layer}, head ${s.head}`,
      facts: [
        ['model', engine.label],
        ['clustering', 'threshold' in s.mode ? `τ = ${s.mode.threshold}` : `τ bisected to remove ${s.mode.ratio}`],
        ['chunking', `${s.level}, ${s.minChunk}–${s.maxChunk} tokens`],
        ['protected', `${s.sinks} sinks + ${s.window} recent`],
      ],
      tokens: ids.map((id) => engine.decode([id])),
      chunkOffsets: trace.tokenChunks,
      layer,
      head: s.head,
      assignment,
      coreSizes,
      layers,
    };
  } finally {
    session.dispose();
  }
}

export async function inspectCommand(ctx: CliContext, argv: string[]): Promise<number> {
  const { values } = parseCommand(inspectSpec, argv);
  if (values.help) {
    ctx.stdout.write(helpText(inspectSpec));
    return EXIT_OK;
  }
  const ratioRaw = stringOpt(values, 'ratio');
  if (ratioRaw !== undefined && values.threshold !== undefined) {
    throw new UsageError('give --threshold or --ratio, not both');
  }
  const minChunk = numberOpt(values, 'min-chunk', DEFAULT_MIN_LENGTH, { min: 1, integer: true });
  const maxChunk = numberOpt(values, 'max-chunk', DEFAULT_MAX_LENGTH, { min: 1, integer: true });
  if (maxChunk < 2 * minChunk - 1) {
    throw new UsageError(`--max-chunk must be ≥ 2·--min-chunk − 1 (${2 * minChunk - 1})`);
  }
  const settings: InspectSettings = {
    tokens: numberOpt(values, 'tokens', 1024, { min: 2, integer: true }),
    layer: values.layer === undefined ? undefined : numberOpt(values, 'layer', 0, { min: 0, integer: true }),
    head: numberOpt(values, 'head', 0, { min: 0, integer: true }),
    mode:
      ratioRaw !== undefined
        ? { ratio: parseRatio(ratioRaw, '--ratio') }
        : { threshold: numberOpt(values, 'threshold', INSPECT_THRESHOLD, { min: -1, max: 1 }) },
    level: choice(['sentence', 'clause'] as const)(stringOpt(values, 'level', 'sentence'), '--level'),
    minChunk,
    maxChunk,
    sinks: numberOpt(values, 'sinks', DEFAULT_SINK_TOKENS, { min: 0, integer: true }),
    window: numberOpt(values, 'window', DEFAULT_RECENT_WINDOW, { min: 0, integer: true }),
  };
  const text = readTextFile(stringOpt(values, 'text') ?? DEMO_TEXT_PATH, '--text');
  const out = stringOpt(values, 'out', 'semanticache-inspect.html');
  const quiet = isQuiet(values);
  const engine = await openEngine(ctx, values);
  try {
    let bar: Progress | undefined;
    const page = await buildInspectPage(engine, text, settings, {
      signal: ctx.signal,
      onProgress: (done, total) => {
        bar ??= progressFor(ctx, quiet)('inspect', total);
        bar.set(done);
      },
    });
    bar?.finish();
    if (!page) return EXIT_INTERRUPTED;
    writeFileSync(out, renderInspectHtml(page));
    const removed = page.layers.map(
      (l) => 1 - Array.from(l.kept).reduce((a, b) => a + b, 0) / (l.full * l.kept.length),
    );
    const summary = {
      file: out,
      model: engine.label,
      tokens: page.tokens.length,
      chunks: page.chunkOffsets.length - 1,
      layer: page.layer,
      head: page.head,
      clusters: page.coreSizes.length,
      removedPerLayer: removed,
    };
    if (values.json) ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    else {
      ctx.stdout.write(
        `${out}: ${summary.tokens} tokens in ${summary.chunks} chunks; layer ${page.layer} head ${page.head}: ${summary.clusters} cores\n` +
          `entries removed per layer: ${removed.map((r, l) => `L${l} ${(100 * r).toFixed(1)}%`).join('  ')}\n`,
      );
    }
    note(ctx, quiet, `open ${out} in a browser`);
    return EXIT_OK;
  } finally {
    await engine.dispose();
  }
}
