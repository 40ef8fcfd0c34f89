import type { Options } from 'tsup';

/**
 * The build every package shares: ESM + CJS with declarations for Node 20, source maps without a copy of the sources
 * (stack traces under `node --enable-source-maps`, a third of the size), and tsup's shims so that `import.meta.url`
 * works in the CJS build of the packages that locate files next to themselves.
 */
export const packageBuild: Options = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  target: 'node20',
  shims: true,
};
