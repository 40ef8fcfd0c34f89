import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { svgToPng } from './png.js';
import { renderLineChart } from './svg.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'semanticache-png-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('svgToPng', () => {
  it('writes a real PNG where a renderer exists, and otherwise leaves nothing behind and says why', () => {
    const dir = mkdtempSync(path.join(scratch, 'case-'));
    const svg = path.join(dir, 'chart.svg');
    const png = path.join(dir, 'chart.png');
    writeFileSync(
      svg,
      renderLineChart({
        title: 't',
        xLabel: 'x',
        yLabel: 'y',
        series: [
          {
            name: 'a',
            points: [
              [0, 1],
              [1, 2],
            ],
          },
        ],
      }),
    );
    const result = svgToPng(svg, png);
    if (result.ok) {
      expect([...readFileSync(png).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    } else {
      expect(result.note).toMatch(/^PNG skipped: /);
      expect(existsSync(png)).toBe(false);
    }
  });

  it('reports a renderer failure on a file that is not SVG', () => {
    const dir = mkdtempSync(path.join(scratch, 'case-'));
    const bad = path.join(dir, 'bad.svg');
    writeFileSync(bad, 'not an svg');
    const result = svgToPng(bad, path.join(dir, 'bad.png'));
    expect(result.ok).toBe(false);
    expect(existsSync(path.join(dir, 'bad.png'))).toBe(false);
  });
});
