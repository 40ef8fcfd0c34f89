import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.preset';

// worker.ts is the entry WorkerModel starts in a worker thread
export default defineConfig({ ...packageBuild, entry: ['src/index.ts', 'src/worker.ts'] });
