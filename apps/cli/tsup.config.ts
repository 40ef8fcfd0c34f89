import { defineConfig, type Options } from 'tsup';

// maps for stack traces (node --enable-source-maps) without a copy of the sources: a third of the size
const noSourcesContent: Options['esbuildOptions'] = (options) => {
  options.sourcesContent = false;
};

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    // keep the command's bundle, built by the second config in parallel
    clean: ['!cli.js', '!cli.js.map'],
    sourcemap: true,
    esbuildOptions: noSourcesContent,
    target: 'node20',
    shims: true,
  },
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    banner: { js: '#!/usr/bin/env node' },
    clean: false,
    sourcemap: true,
    esbuildOptions: noSourcesContent,
    target: 'node20',
  },
]);
