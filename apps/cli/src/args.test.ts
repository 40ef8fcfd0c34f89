import { describe, expect, it } from 'vitest';
import { helpText, parseCommand, parseNumber } from './args.js';
import { generateSpec, samplingOpts } from './commands/generate.js';
import { budgetOpt, parseRatio, policyOpt } from './commands/shared.js';
import { UsageError } from './errors.js';

describe('option parsing', () => {
  it('turns unknown flags, missing values and extra arguments into UsageErrors', () => {
    expect(() => parseCommand(generateSpec, ['--bogus'])).toThrow(UsageError);
    expect(() => parseCommand(generateSpec, ['--file'])).toThrow(/argument missing|--file/);
    expect(() => parseCommand(generateSpec, ['a', 'b'])).toThrow(/unexpected argument 'b'/);
    const { values, positionals } = parseCommand(generateSpec, ['hello', '--stop', 'x', '--stop', 'y', '--json']);
    expect(positionals).toEqual(['hello']);
    expect(values.stop).toEqual(['x', 'y']);
  });

  it('reads typed values and names the flag in errors', () => {
    expect(parseNumber('12', '--n', { integer: true, min: 1 })).toBe(12);
    expect(() => parseNumber('1.5', '--n', { integer: true })).toThrow(/--n: expected an integer/);
    expect(() => parseNumber('abc', '--n')).toThrow(/--n: expected a number/);
    expect(() => parseNumber('', '--n')).toThrow(UsageError);
    expect(() => parseRatio('1', '--ratio')).toThrow(/\[0, 1\)/);
    expect(parseRatio('0.75', '--ratio')).toBe(0.75);
    expect(budgetOpt({ 'max-entries': '64' })).toEqual({ maxEntries: 64 });
    expect(budgetOpt({})).toEqual({ ratio: 0.75 });
    expect(() => budgetOpt({ ratio: '0.5', 'max-entries': '8' })).toThrow(/not both/);
    expect(() => policyOpt({ policy: 'lru' }, 'full')).toThrow(/unknown policy 'lru'/);
    const s = samplingOpts({ temperature: '0', 'top-k': '5' });
    expect(s).toMatchObject({ temperature: 0, topK: 5, topP: 0.95, maxTokens: 128, stop: [] });
    expect(() => samplingOpts({ 'top-p': '1.5' })).toThrow(/--top-p/);
  });

  it('documents every option in the help text', () => {
    const help = helpText(generateSpec);
    for (const name of Object.keys(generateSpec.options)) expect(help).toContain(`--${name}`);
    expect(help).toContain('(default: semanticache)');
  });
});
