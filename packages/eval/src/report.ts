import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { svgToPng } from './png.js';
import { type LineChart, renderLineChart } from './svg.js';

export interface ReportFiles {
  files: string[];
  notes: string[];
}

/** Writes `<base>.md`, `<base>.json` and one SVG (+ PNG where a renderer exists) per chart into `dir`. */
export function writeReport(
  dir: string,
  base: string,
  content: { markdown: string; json: unknown; charts: { name: string; chart: LineChart }[] },
): ReportFiles {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const notes = new Set<string>();
  const md = path.join(dir, `${base}.md`);
  writeFileSync(md, content.markdown);
  files.push(md);
  const json = path.join(dir, `${base}.json`);
  writeFileSync(json, `${JSON.stringify(content.json, null, 2)}\n`);
  files.push(json);
  for (const { name, chart } of content.charts) {
    const svg = path.join(dir, `${base}-${name}.svg`);
    writeFileSync(svg, renderLineChart(chart));
    files.push(svg);
    const png = svg.replace(/\.svg$/, '.png');
    const result = svgToPng(svg, png);
    if (result.ok) files.push(png);
    else notes.add(result.note);
  }
  return { files, notes: [...notes] };
}
