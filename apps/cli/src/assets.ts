import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.js';

// src/ and dist/ both sit one level below the package root, next to assets/
const assetsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'assets');

/** ~4.5K tokens from the start of the held-out slice: the demo's long text and inspect's default. */
export const DEMO_TEXT_PATH = path.join(assetsDir, 'demo-text.txt');
/** The held-out public-domain slice (two Gutenberg books): eval's default text and the retrieval filler. */
export const VAL_SLICE_PATH = path.join(assetsDir, 'val-slice.txt');

/** Reads a text file named by a flag; a missing file is a usage error. */
export function readTextFile(file: string, flag: string): string {
  if (!existsSync(file)) throw new UsageError(`${flag}: no such file: ${file}`);
  const text = readFileSync(file, 'utf8');
  if (text.trim().length === 0) throw new UsageError(`${flag}: ${file} is empty`);
  return text;
}
