import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type AddonHost, addonLoadErrorMessage, loadNativeAddon, type NodeGypBuild } from './load-addon.js';

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as NodeGypBuild;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pa-load-addon-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const host: AddonHost = { platform: 'linux', arch: 'x64', libc: 'glibc 2.36', node: '20.20.2' };

describe('native addon loading', () => {
  it('tells an npm user what to do when no binary matches (real node-gyp-build on an empty package)', () => {
    const root = path.join(scratch, 'empty');
    fs.mkdirSync(root, { recursive: true });
    let error: Error | undefined;
    try {
      loadNativeAddon(root, nodeGypBuild, require, () => host);
    } catch (e) {
      error = e as Error;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error?.message).toBe(
      '@semanticache/proportional-attention: no prebuilt binary for linux-x64 (glibc 2.36), Node.js 20.20.2 and no ' +
        `local build (looked in ${root}/prebuilds and ${root}/build/Release). To build it from source, install a ` +
        'C++17 toolchain (g++ or clang++, make, python3; on Debian/Ubuntu `apt-get install g++ make python3`) and ' +
        'run `npm rebuild @semanticache/proportional-attention` in your project (pnpm: `pnpm rebuild ' +
        '@semanticache/proportional-attention`). An install with --ignore-scripts skips that build step; the ' +
        'rebuild runs it.',
    );
    expect(error?.message).not.toContain('--filter'); // the old, monorepo-only advice
    expect((error?.cause as Error | undefined)?.message).toMatch(/^No native build was found for platform=/);
  });

  it('names the binary and the loader error when a matching binary does not load', () => {
    const root = path.join(scratch, 'broken');
    const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'node.napi.node'), 'not a shared object');
    let error: Error | undefined;
    try {
      loadNativeAddon(root, nodeGypBuild, require, () => host);
    } catch (e) {
      error = e as Error;
    }
    const file = path.join(dir, 'node.napi.node');
    expect(error?.message).toContain(`the native binary ${file} does not load on linux-x64 (glibc 2.36)`);
    expect(error?.message).toContain('run `npm rebuild @semanticache/proportional-attention`');
    expect(error?.cause).toBeInstanceOf(Error);
  });

  it('describes the running host (platform, arch, libc off the process) by default', () => {
    const message = addonLoadErrorMessage('/pkg', { platform: 'darwin', arch: 'arm64', node: '22.1.0' });
    expect(message).toContain('no prebuilt binary for darwin-arm64, Node.js 22.1.0 and no local build');
    const root = path.join(scratch, 'empty');
    fs.mkdirSync(root, { recursive: true });
    let error: Error | undefined;
    try {
      loadNativeAddon(root, nodeGypBuild, require);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toContain(`no prebuilt binary for ${process.platform}-${process.arch}`);
    if (process.platform === 'linux') expect(error?.message).toMatch(/\((glibc [\d.]+|musl)\)/);
  });

  it('loads the real addon from the package root', () => {
    const addon = loadNativeAddon<{ simdLevel(): string }>(
      path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'),
      nodeGypBuild,
      require,
    );
    expect(['avx512', 'avx2', 'scalar']).toContain(addon.simdLevel());
  });
});

describe('the built package without a binary', () => {
  // dist/ copied beside no build/ and no prebuilds/: importing must succeed, the reference must work, and the
  // first kernel call must throw the install advice (the addon loads on first use, not at import).
  const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

  it('imports, runs the reference, and fails only on the first kernel call', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pa-nobinary-'));
    try {
      fs.cpSync(path.join(packageRoot, 'dist'), path.join(root, 'dist'), { recursive: true });
      fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ type: 'module' }));
      fs.symlinkSync(path.join(packageRoot, 'node_modules'), path.join(root, 'node_modules'), 'dir');
      const index = await import(path.join(root, 'dist', 'index.js'));
      const { referenceAttention } = await import(path.join(root, 'dist', 'reference.js'));
      const head = {
        keys: new Float32Array([1, 0]),
        values: new Float32Array([3, 4]),
        logSizes: new Float32Array(1),
        length: 1,
      };
      const args = { q: new Float32Array([1, 1]), heads: [head], numHeads: 1, headDim: 2 };
      expect(Array.from(referenceAttention(args))).toEqual([3, 4]);
      expect(() => index.decode(args)).toThrow(/no prebuilt binary for .* and no local build/);
      expect(() => index.simdLevel()).toThrow(/no prebuilt binary/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
