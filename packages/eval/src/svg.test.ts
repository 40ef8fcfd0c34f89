import { describe, expect, it } from 'vitest';
import { niceTicks, renderLineChart } from './svg.js';

const chart = {
  title: 'Accuracy <test> & more',
  xLabel: 'ratio',
  yLabel: 'accuracy',
  yInclude: [0, 1],
  series: [
    {
      name: 'semanticache',
      points: [
        [0.5, 0.9],
        [0.75, 0.8],
      ] as [number, number | null][],
    },
    {
      name: 'snapkv',
      points: [
        [0.5, 0.7],
        [0.75, null],
      ] as [number, number | null][],
    },
    {
      name: 'full cache',
      role: 'reference' as const,
      points: [
        [0, 1],
        [0.75, 1],
      ] as [number, number | null][],
    },
  ],
};

describe('renderLineChart', () => {
  const svg = renderLineChart(chart);

  it('is a standalone SVG document with escaped text', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('Accuracy &lt;test&gt; &amp; more');
    expect(svg).not.toMatch(/<test>/);
    // every opened element is closed
    const opened = (svg.match(/<(svg|g|text|circle|title)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|g|text|circle|title)>/g) ?? []).length;
    const selfClosed = (svg.match(/<circle[^>]*\/>/g) ?? []).length;
    expect(opened).toBe(closed + selfClosed);
  });

  it('draws one group and one legend entry per series, markers only for finite policy points', () => {
    expect(svg.match(/<g class="series"/g)).toHaveLength(3);
    for (const name of ['semanticache', 'snapkv', 'full cache']) expect(svg).toContain(`>${name}</text>`);
    expect(svg.match(/<circle/g)).toHaveLength(3);
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
  });

  it('maps data into the plot area: higher values sit higher', () => {
    const ys = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => Number(m[2]));
    expect(ys[0]).toBeLessThan(ys[1]); // 0.9 above 0.8
    expect(ys[1]).toBeLessThan(ys[2]); // 0.8 above 0.7
  });

  it('supports a log y axis and rejects charts with nothing to plot', () => {
    const log = renderLineChart({
      ...chart,
      logY: true,
      yInclude: [],
      series: [
        {
          name: 'a',
          points: [
            [1, 10],
            [2, 1000],
          ],
        },
      ],
    });
    expect(log).toContain('(log scale)');
    expect(log).toContain('>100<');
    expect(() => renderLineChart({ ...chart, series: [] })).toThrow(RangeError);
    expect(() => renderLineChart({ ...chart, yInclude: [], series: [{ name: 'a', points: [[1, null]] }] })).toThrow(
      /no finite points/,
    );
  });
});

describe('niceTicks', () => {
  it('covers the range with 1-2-5 steps', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(12, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(5, 5).length).toBeGreaterThan(1);
    expect(() => niceTicks(0, Number.NaN)).toThrow(RangeError);
  });
});

describe('dodge', () => {
  it('shifts equal series apart so each stays visible', () => {
    const same = {
      ...chart,
      dodge: true,
      series: [
        { name: 'a', points: [[0.5, 0.5]] as [number, number | null][] },
        { name: 'b', points: [[0.5, 0.5]] as [number, number | null][] },
      ],
    };
    const cs = [...renderLineChart(same).matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [
      Number(m[1]),
      Number(m[2]),
    ]);
    expect(cs).toHaveLength(2);
    expect(cs[1][0] - cs[0][0]).toBeCloseTo(3, 5);
    expect(cs[1][1] - cs[0][1]).toBeCloseTo(2, 5);
  });
});
