import { defineConfig } from 'tsup';

export default defineConfig({
  // worker.ts is the entry WorkerModel starts in a worker thread
  entry: ['src/index.ts', 'src/worker.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  // maps for stack traces (node --enable-source-maps) without a copy of the sources: a third of the size
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  target: 'node20',
  // import.meta.url (locating worker.js) in the CJS build
  shims: true,
});
