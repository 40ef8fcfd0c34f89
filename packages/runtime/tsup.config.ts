import { defineConfig } from 'tsup';
import { inlineInternal, packageBuild } from '../../tsup.preset.ts';

// worker.ts is the entry WorkerModel starts in a worker thread, graph-worker.ts the one a load builds graphs in
export default defineConfig({
  ...packageBuild,
  ...inlineInternal,
  entry: ['src/index.ts', 'src/worker.ts', 'src/graph-worker.ts'],
});
