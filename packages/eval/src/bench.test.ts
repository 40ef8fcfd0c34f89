import { describe, expect, it } from 'vitest';
import { type BenchRow, benchCharts, benchTable, median } from './bench.js';

const row = (policy: 'full' | 'semanticache', contextTokens: number, decode: number): BenchRow => ({
  policy,
  ratio: policy === 'full' ? 0 : 0.75,
  contextTokens,
  repeats: 3,
  prefillTokensPerSecond: 1000,
  compressMs: 5,
  decodeTokens: 32,
  decodeTokensPerSecond: decode,
  entries: policy === 'full' ? 4800 : 1200,
  fullEntries: 4800,
  kvBytes: policy === 'full' ? 4 * 1024 * 1024 : 1024 * 1024,
  fullKvBytes: 4 * 1024 * 1024,
  rssBytes: 300 * 1024 * 1024,
});

describe('bench report', () => {
  const rows = [
    row('semanticache', 1024, 90),
    row('full', 1024, 60),
    row('semanticache', 2048, 80),
    row('full', 2048, 40),
  ];

  it('reports decode speed against the full cache at the same length', () => {
    const t = benchTable(rows);
    const speedup = t.columns.indexOf('decode × full');
    expect(t.rows.map((r) => r[speedup])).toEqual([1.5, 1, 2, 1]);
    expect(t.rows[0][t.columns.indexOf('KV MiB')]).toBe(1);
  });

  it('plots one series per policy over the context lengths, the full cache as a baseline', () => {
    const [decode] = benchCharts(rows, 'm');
    expect(decode.chart.series.map((s) => [s.name, s.role])).toEqual([
      ['semanticache@0.75', 'measured'],
      ['full cache', 'baseline'],
    ]);
    expect(decode.chart.series[1].points).toEqual([
      [1024, 60],
      [2048, 40],
    ]);
  });

  it('takes medians', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
