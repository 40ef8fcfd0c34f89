import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Renderers tried in order; each is given the SVG path and the PNG path. */
const RENDERERS: { name: string; args: (svg: string, png: string) => string[] }[] = [
  { name: 'rsvg-convert', args: (svg, png) => ['-o', png, svg] },
  { name: 'magick', args: (svg, png) => [svg, png] },
  { name: 'convert', args: (svg, png) => [svg, png] },
  { name: 'inkscape', args: (svg, png) => [svg, '--export-type=png', `--export-filename=${png}`] },
];

function isPng(path: string): boolean {
  if (!existsSync(path)) return false;
  const head = readFileSync(path).subarray(0, 8);
  return head.length === 8 && PNG_SIGNATURE.every((b, i) => head[i] === b);
}

export type PngResult = { ok: true; renderer: string } | { ok: false; note: string };

/**
 * Renders an SVG file to PNG with the first local renderer that produces a real PNG. Tools that exist but cannot
 * render SVG (stand-ins, builds without an SVG delegate) are skipped by checking the output, not the name.
 */
export function svgToPng(svgPath: string, pngPath: string): PngResult {
  const tried: string[] = [];
  for (const renderer of RENDERERS) {
    const result = spawnSync(renderer.name, renderer.args(svgPath, pngPath), { stdio: 'ignore', timeout: 30_000 });
    if (result.error) continue; // not installed
    tried.push(renderer.name);
    if (result.status === 0 && isPng(pngPath)) return { ok: true, renderer: renderer.name };
    rmSync(pngPath, { force: true });
  }
  return {
    ok: false,
    note:
      tried.length === 0
        ? 'PNG skipped: no SVG renderer found (install librsvg2-bin or imagemagick)'
        : `PNG skipped: ${tried.join(', ')} could not render SVG here (install librsvg2-bin or imagemagick)`,
  };
}
