import { describe, expect, it } from 'vitest';
import { formatCell, toMarkdown, toRecords } from './table.js';

describe('table writers', () => {
  const table = {
    title: 'Summary',
    columns: ['policy', 'ratio', 'ppl'],
    rows: [
      ['full', 0, 35.812],
      ['semanticache', 0.75, Number.NaN],
      ['snap|kv', 0.5, null],
    ] as (string | number | null)[][],
  };

  it('writes aligned GitHub markdown with numeric columns right-aligned', () => {
    const md = toMarkdown(table);
    const lines = md.trimEnd().split('\n');
    expect(lines[0]).toBe('### Summary');
    expect(lines[2]).toBe('| policy       | ratio |   ppl |');
    expect(lines[3]).toBe('| ------------ | ----: | ----: |');
    expect(lines[4]).toBe('| full         |     0 | 35.81 |');
    expect(lines[5]).toBe('| semanticache |  0.75 |   NaN |');
    expect(lines[6]).toBe('| snap\\|kv     |   0.5 |     — |');
    expect(new Set(lines.slice(2).map((l) => l.length)).size).toBe(1);
  });

  it('keeps raw numbers in records and maps non-finite ones to null', () => {
    expect(toRecords(table)).toEqual([
      { policy: 'full', ratio: 0, ppl: 35.812 },
      { policy: 'semanticache', ratio: 0.75, ppl: null },
      { policy: 'snap|kv', ratio: 0.5, ppl: null },
    ]);
  });

  it('rejects ragged rows', () => {
    expect(() => toMarkdown({ columns: ['a', 'b'], rows: [[1]] })).toThrow(RangeError);
    expect(() => toRecords({ columns: [], rows: [] })).toThrow(/at least one column/);
  });

  it('formats numbers by magnitude', () => {
    expect(formatCell(1234.56)).toBe('1235');
    expect(formatCell(123.456)).toBe('123.5');
    expect(formatCell(0.12345)).toBe('0.123');
    expect(formatCell(7)).toBe('7');
    expect(formatCell(Number.POSITIVE_INFINITY)).toBe('∞');
  });
});
