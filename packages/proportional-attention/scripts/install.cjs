#!/usr/bin/env node
// Install-time and packaging entry points for the native addon.
//   (no flag)       the package's `install` script: node-gyp-build. It keeps a binary that loads (a local build in
//                   build/Release, else the matching prebuilt one in prebuilds/<platform>-<arch>/) and compiles from
//                   source (node-gyp rebuild) only when none does. On failure it says what to do.
//   --rebuild       always recompile from source (node-gyp rebuild).
//   --prebuildify   write prebuilds/<platform>-<arch>/node.napi.<libc>.node (N-API, stripped; `prepack` runs this).
// pnpm's bundled node-gyp ignores npmrc's `nodedir` and would download the Node.js headers from the network; when
// nothing is configured, point it at the headers of the running node if they are installed.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const NAME = '@semanticache/proportional-attention';
const root = path.resolve(__dirname, '..');
const env = { ...process.env };
if (!env.npm_config_nodedir) {
  const prefix = path.resolve(process.execPath, '../..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
}

function run(file, args, stdio = 'inherit') {
  const result = spawnSync(file, args, { cwd: root, env, stdio });
  if (result.error) console.error(`${NAME}: ${result.error.message}`);
  return result.status ?? 1;
}

// Loads the addon the way the package will (in a child: a bad binary may crash), without compiling anything.
function loads() {
  const load = `require(${JSON.stringify(require.resolve('node-gyp-build'))})(${JSON.stringify(root)})`;
  return run(process.execPath, ['-e', load], 'ignore') === 0;
}

let status;
if (process.argv.includes('--prebuildify')) {
  // One N-API binary for every Node.js version; tagged glibc/musl so a glibc build is never picked on Alpine.
  status = run(process.execPath, [
    require.resolve('prebuildify/bin.js'),
    '--napi',
    '--strip',
    '--tag-libc',
    ...process.argv.slice(2).filter((a) => a !== '--prebuildify'),
  ]);
} else if (process.argv.includes('--rebuild')) {
  status = run('node-gyp', ['rebuild']);
} else if (env.npm_config_build_from_source !== 'true' && loads()) {
  status = 0; // a local build or a prebuilt binary loads: nothing to compile
} else {
  // node-gyp-build's own installer: tests again, then runs node-gyp rebuild (npm and pnpm put node-gyp on PATH).
  status = run(process.execPath, [require.resolve('node-gyp-build/bin.js')]);
  if (status !== 0) {
    const glibc = process.platform === 'linux' && process.report?.getReport()?.header?.glibcVersionRuntime;
    const libc = process.platform !== 'linux' ? '' : glibc ? ` (glibc ${glibc})` : ' (musl)';
    console.error(
      `\n${NAME}: no prebuilt binary loads on ${process.platform}-${process.arch}${libc}, Node.js ` +
        `${process.versions.node}, and compiling it from source failed (see the node-gyp output above).\n` +
        'Install a C++17 toolchain (g++ or clang++, make, python3; on Debian/Ubuntu `apt-get install g++ make ' +
        `python3\`) and run \`npm rebuild ${NAME}\` (pnpm: \`pnpm rebuild ${NAME}\`).\n`,
    );
  }
}
process.exit(status);
