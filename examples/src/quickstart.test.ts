import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const example = path.join(here, 'quickstart.ts');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

function runExample(args: string[]) {
  return spawnSync(tsx, [example, ...args], { cwd: path.join(here, '..'), encoding: 'utf8', timeout: 120_000 });
}

describe('quickstart (the README example)', () => {
  it('is the code the README shows', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const block = /## Use it[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    const code = readFileSync(example, 'utf8').split('\n').slice(1).join('\n'); // without its first comment line
    expect(block).toBe(code);
  });

  for (const [name, text] of [
    ['its default one-line prompt', undefined],
    ['a long text', readFileSync(path.join(root, 'fixtures', 'corpus', 'val-slice.txt'), 'utf8').slice(0, 12_000)],
  ] as const) {
    it(`runs as written on ${name}`, () => {
      const args: string[] = [];
      if (text !== undefined) {
        const file = path.join(mkdtempSync(path.join(tmpdir(), 'quickstart-')), 'text.txt');
        writeFileSync(file, text);
        args.push(file);
      }
      const r = runExample(args);
      expect(r.status, r.stderr).toBe(0);
      const bytes = /\{ current: (\d+), full: (\d+) \}/.exec(r.stdout);
      expect(bytes, r.stdout).not.toBeNull();
      // compression engages on the long text; a one-line prompt keeps its protected entries
      const [current, full] = [Number(bytes?.[1]), Number(bytes?.[2])];
      if (text === undefined) expect(current).toBe(full);
      else expect(current).toBeLessThan(0.35 * full);
    });
  }
});
