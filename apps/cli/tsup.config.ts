import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.preset';

export default defineConfig([
  // keep the command's bundle, built by the second config in parallel
  { ...packageBuild, clean: ['!cli.js', '!cli.js.map'] },
  {
    ...packageBuild,
    entry: ['src/cli.ts'],
    format: ['esm'],
    dts: false,
    banner: { js: '#!/usr/bin/env node' },
    clean: false,
    shims: false,
  },
]);
