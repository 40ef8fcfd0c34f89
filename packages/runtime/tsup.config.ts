import { defineConfig } from 'tsup';

export default defineConfig({
  // worker.ts is the entry WorkerModel starts in a worker thread
  entry: ['src/index.ts', 'src/worker.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // import.meta.url (locating worker.js) in the CJS build
  shims: true,
});
