import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// src/ and dist/ both sit one level below the package root, next to package.json
const packageJson = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json');

/** The version in the installed package.json, read at run time so it follows `changeset version`. */
export function readVersion(file: string = packageJson): string {
  const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
  if (typeof version !== 'string') throw new Error(`no version in ${file}`);
  return version;
}
