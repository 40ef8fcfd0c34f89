#!/usr/bin/env node
// Builds the addon at install time (`--rebuild`: always recompile). pnpm's bundled node-gyp ignores npmrc's
// `nodedir` and would download headers from the network; when nothing is configured, point it at the headers of
// the running node if they are installed.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const env = { ...process.env };
if (!env.npm_config_nodedir) {
  const prefix = path.resolve(process.execPath, '../..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
}
const command = process.argv.includes('--rebuild')
  ? 'node-gyp rebuild'
  : `"${process.execPath}" "${require.resolve('node-gyp-build/bin.js')}"`;
const result = spawnSync(command, { cwd: path.resolve(__dirname, '..'), env, stdio: 'inherit', shell: true });
process.exit(result.status ?? 1);
