import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export type OptionSpec = {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** shown in help; `arg` names the value */
  help: string;
  arg?: string;
  default?: string;
};

export interface CommandSpec {
  name: string;
  aliases?: string[];
  /** one line for the command list */
  short: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** number of positional arguments allowed */
  maxPositionals: number;
  examples?: string[];
}

export const MODEL_OPTIONS: Record<string, OptionSpec> = {
  model: {
    type: 'string',
    arg: 'DIR|FILE.bin',
    help: 'HF Llama-family folder (config.json, *.safetensors, tokenizer.json) or llama2.c .bin (default: the embedded demo model)',
  },
  tokenizer: {
    type: 'string',
    arg: 'FILE',
    help: 'llama2.c tokenizer for a .bin model (default: the tok*.bin or tokenizer.bin beside it)',
  },
  threads: { type: 'string', arg: 'N', help: 'ONNX Runtime threads per run', default: '1' },
  'kv-dtype': {
    type: 'string',
    arg: 'TYPE',
    help: 'KV-cache storage: float16 | float32 (twice the bytes, the exact fp32 cache)',
    default: 'float16',
  },
  weights: {
    type: 'string',
    arg: 'FORMAT',
    help: 'weights in the graphs: float32 | int8 | int4 (blocks of 32 quantized at load)',
    default: 'float32',
  },
};

export const OUTPUT_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'machine-readable JSON on stdout; no progress output' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress output on stderr' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const BUDGET_OPTIONS: Record<string, OptionSpec> = {
  policy: {
    type: 'string',
    arg: 'NAME',
    help: 'semanticache | streaming-llm | snapkv | h2o | chunkkv | merge-values | full',
  },
  ratio: { type: 'string', arg: 'R', help: 'fraction of cache entries removed, in [0, 1)' },
  'max-entries': { type: 'string', arg: 'N', help: 'keep at most N entries per head (instead of --ratio)' },
};

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: ParsedValues;
  positionals: string[];
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const values = parsed.values as ParsedValues;
  if (values.help) return { values, positionals: parsed.positionals };
  if (parsed.positionals.length > spec.maxPositionals) {
    throw new UsageError(`unexpected argument '${parsed.positionals[spec.maxPositionals]}'`);
  }
  return { values, positionals: parsed.positionals };
}

export function helpText(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, '', spec.summary, '', 'Options:'];
  const entries = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
    const text = o.default !== undefined ? `${o.help} (default: ${o.default})` : o.help;
    return [flag, text] as const;
  });
  const width = Math.min(32, Math.max(...entries.map(([f]) => f.length)) + 2);
  for (const [flag, text] of entries) {
    lines.push(flag.length >= width ? `  ${flag}\n  ${' '.repeat(width)}${text}` : `  ${flag.padEnd(width)}${text}`);
  }
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}

// ---- typed option readers: each names its flag in the error ----

export function stringOpt(values: ParsedValues, name: string, fallback: string): string;
export function stringOpt(values: ParsedValues, name: string): string | undefined;
export function stringOpt(values: ParsedValues, name: string, fallback?: string): string | undefined {
  const v = values[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'string') throw new UsageError(`--${name} expects a value`);
  return v;
}

export function numberOpt(
  values: ParsedValues,
  name: string,
  fallback: number,
  range: { min?: number; max?: number; integer?: boolean; exclusiveMax?: boolean } = {},
): number {
  const raw = stringOpt(values, name);
  if (raw === undefined) return fallback;
  return parseNumber(raw, `--${name}`, range);
}

export function parseNumber(
  raw: string,
  label: string,
  range: { min?: number; max?: number; integer?: boolean; exclusiveMax?: boolean } = {},
): number {
  const v = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(v)) throw new UsageError(`${label}: expected a number, got '${raw}'`);
  if (range.integer && !Number.isInteger(v)) throw new UsageError(`${label}: expected an integer, got '${raw}'`);
  if (range.min !== undefined && v < range.min) throw new UsageError(`${label}: must be ≥ ${range.min}, got ${raw}`);
  if (range.max !== undefined && (range.exclusiveMax ? v >= range.max : v > range.max)) {
    throw new UsageError(`${label}: must be ${range.exclusiveMax ? '<' : '≤'} ${range.max}, got ${raw}`);
  }
  return v;
}

export function listOpt<T>(
  values: ParsedValues,
  name: string,
  fallback: T[],
  parse: (item: string, label: string) => T,
): T[] {
  const raw = stringOpt(values, name);
  if (raw === undefined) return fallback;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw new UsageError(`--${name}: expected a comma-separated list, got '${raw}'`);
  return items.map((item) => parse(item, `--${name}`));
}

export function choice<T extends string>(allowed: readonly T[]) {
  return (item: string, label: string): T => {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new UsageError(`${label}: unknown value '${item}' (expected one of ${allowed.join(', ')})`);
    }
    return item as T;
  };
}

/** The flag that sets a setting: `decodeTarget` → `--decode-target`. */
export function flagName(setting: string): string {
  return `--${setting.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
