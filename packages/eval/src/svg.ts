/** A small dependency-free SVG line chart: axes with nice ticks, one line per series, legend, optional baselines. */

export interface Series {
  name: string;
  /** x, y pairs; y may be NaN/null for a missing point (the line breaks there) */
  points: [number, number | null][];
  /** 'measured' (default): coloured line with markers; 'baseline': a measured reference (dashed, neutral, markers);
   *  'reference': a flat reference line such as the full cache across budgets (dashed, neutral, no markers) */
  role?: 'measured' | 'baseline' | 'reference';
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  /** log10 y axis, for quantities spanning decades (bytes, speed) */
  logY?: boolean;
  /** force the y range to include these values (e.g. 0 and 1 for accuracy) */
  yInclude?: number[];
  /** shift each measured series sideways by a few pixels, so equal values (common for accuracies) stay visible */
  dodge?: boolean;
}

export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
];

const BASELINE_COLOR = '#444444';

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** Round tick positions (1, 2, 5 × 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi))
    throw new RangeError(`ticks: range must be finite, got [${lo}, ${hi}]`);
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const first = Math.floor(lo / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = first; v <= hi + step * 0.5; v += step) ticks.push(Number(v.toPrecision(12)));
  while (ticks.length > 1 && ticks[1] <= lo + 1e-12 * Math.abs(step)) ticks.shift();
  return ticks;
}

function formatTick(v: number): string {
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(0);
  if (Number.isInteger(v) && abs < 100_000) return String(v);
  if (abs >= 1000) return `${Number((v / 1000).toPrecision(4))}k`;
  return String(Number(v.toPrecision(4)));
}

export function renderLineChart(chart: LineChart): string {
  const width = chart.width ?? 720;
  const height = chart.height ?? 440;
  if (chart.series.length === 0) throw new RangeError('chart: needs at least one series');
  const finite = (v: number | null): v is number => v !== null && Number.isFinite(v) && (!chart.logY || v > 0);
  const xs = chart.series.flatMap((s) => s.points.map((p) => p[0])).filter((v) => Number.isFinite(v));
  const ys = chart.series.flatMap((s) => s.points.map((p) => p[1])).filter(finite);
  ys.push(...(chart.yInclude ?? []).filter(finite));
  if (xs.length === 0 || ys.length === 0) throw new RangeError('chart: no finite points to plot');

  const tx = (v: number) => (chart.logY ? Math.log10(v) : v);
  let xTicks = niceTicks(Math.min(...xs), Math.max(...xs));
  const distinctX = [...new Set(xs)].sort((a, b) => a - b);
  if (distinctX.length <= 8) xTicks = distinctX.length > 1 ? distinctX : niceTicks(distinctX[0], distinctX[0]);
  // a little headroom so points do not sit on the frame, unless the caller fixed the range (accuracy in [0, 1])
  const pad = chart.yInclude?.length ? 0 : (Math.max(...ys) - Math.min(...ys)) * 0.04;
  const yTicksLin = chart.logY
    ? logTicks(Math.min(...ys), Math.max(...ys))
    : niceTicks(Math.min(...ys) - pad, Math.max(...ys) + pad);
  const [x0, x1] = [Math.min(...xTicks, ...xs), Math.max(...xTicks, ...xs)];
  const [y0, y1] = [tx(Math.min(...yTicksLin, ...ys)), tx(Math.max(...yTicksLin, ...ys))];

  const legendWidth = 170;
  const m = { left: 72, right: legendWidth + 24, top: 44, bottom: 56 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const sx = (v: number) => m.left + (x1 === x0 ? pw / 2 : ((v - x0) / (x1 - x0)) * pw);
  const sy = (v: number) => m.top + ph - (y1 === y0 ? ph / 2 : ((tx(v) - y0) / (y1 - y0)) * ph);
  const f = (v: number) => v.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
  );
  // grid and ticks
  for (const t of yTicksLin) {
    const y = f(sy(t));
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${formatTick(t)}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = f(sx(t));
    out.push(
      `<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}" stroke="#f0f0f0"/>`,
      `<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle" fill="#444">${formatTick(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${height - 14}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}${chart.logY ? ' (log scale)' : ''}</text>`,
  );
  // series
  let colorIndex = 0;
  const measuredCount = chart.series.filter((s) => (s.role ?? 'measured') === 'measured').length;
  chart.series.forEach((s, i) => {
    const shift = chart.dodge && (s.role ?? 'measured') === 'measured' ? colorIndex - (measuredCount - 1) / 2 : 0;
    const dx = shift * 3;
    const dy = shift * 2;
    // baselines are neutral so the policies keep the palette
    const measured = (s.role ?? 'measured') === 'measured';
    const color = measured ? PALETTE[colorIndex++ % PALETTE.length] : BASELINE_COLOR;
    const dash = measured ? '' : ' stroke-dasharray="6 4"';
    let path = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !finite(y)) {
        pen = false;
        continue;
      }
      path += `${pen ? 'L' : 'M'}${f(sx(x) + dx)} ${f(sy(y) + dy)}`;
      pen = true;
    }
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (path) out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    for (const [x, y] of s.role === 'reference' ? [] : s.points) {
      if (!Number.isFinite(x) || !finite(y)) continue;
      out.push(
        `<circle cx="${f(sx(x) + dx)}" cy="${f(sy(y) + dy)}" r="3.5" fill="${color}"><title>${escapeXml(`${s.name}: ${formatTick(x)} → ${Number(y.toPrecision(4))}`)}</title></circle>`,
      );
    }
    out.push('</g>');
    const ly = m.top + 8 + i * 20;
    const lx = width - legendWidth - 8;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 32}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) ticks.push(10 ** e);
  return ticks;
}
