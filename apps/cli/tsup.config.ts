import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    // keep the command's bundle, built by the second config in parallel
    clean: ['!cli.js', '!cli.js.map'],
    sourcemap: true,
    target: 'node20',
    shims: true,
  },
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    banner: { js: '#!/usr/bin/env node' },
    clean: false,
    sourcemap: true,
    target: 'node20',
  },
]);
