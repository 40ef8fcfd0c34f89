import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliContext } from './context.js';
import { main, VERSION } from './main.js';
import { packageRoot } from './test-support.js';
import { readVersion } from './version.js';

const packageVersion = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string })
  .version;
const tmp = mkdtempSync(path.join(tmpdir(), 'semanticache-version-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('--version', () => {
  it("prints the package.json's version", async () => {
    expect(VERSION).toBe(packageVersion);
    let out = '';
    const ctx = {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: () => true },
    } as unknown as CliContext;
    for (const flag of ['--version', '-v']) {
      out = '';
      expect(await main([flag], ctx)).toBe(0);
      expect(out).toBe(`${packageVersion}\n`);
    }
  });

  it('reads it at run time, so the built command follows `changeset version` without a rebuild', () => {
    const cli = path.join(packageRoot, 'dist', 'cli.js');
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`pnpm build\` in apps/cli first`);
    // the built dist/ next to a package.json as `changeset version` leaves it
    const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8'));
    writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ ...pkg, version: '7.8.9-next.1' }));
    cpSync(path.join(packageRoot, 'dist'), path.join(tmp, 'dist'), { recursive: true });
    symlinkSync(path.join(packageRoot, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
    expect(readVersion(path.join(tmp, 'package.json'))).toBe('7.8.9-next.1');
    const r = spawnSync(process.execPath, [path.join(tmp, 'dist', 'cli.js'), '--version'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('7.8.9-next.1\n');
    expect(r.status).toBe(0);
  });
});
