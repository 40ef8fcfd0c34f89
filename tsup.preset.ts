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

/**
 * For a package that imports @semanticache/internal (private, never published): its code, and the declarations of
 * what the package re-exports from it, are bundled in, so that the published package installs alone.
 */
export const inlineInternal: Options = {
  noExternal: ['@semanticache/internal'],
  dts: { compilerOptions: { paths: { '@semanticache/internal': ['../internal/src/index.ts'] } } },
};

/**
 * An app: its library build, plus `src/cli.ts` bundled alone as an ESM command with a shebang (`dist/cli.js`, the
 * package's bin). The two configs build in parallel, so the library's clean keeps the command's files.
 */
export const appBuild: Options[] = [
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
];
