#!/usr/bin/env node
// Packs every publishable workspace package and checks each tarball the way a user gets it (docs/packaging.md):
//  1. `pnpm pack` each package whose package.json is not `private` (found with `pnpm ls -r`, never a fixed list).
//  2. The only networked phase: per package, resolve its install (`npm install --package-lock-only` of its tarball and
//     the internal tarballs it needs) against the registry, then `npm cache add` every third-party name@version into a
//     cache folder private to this run.
//  3. Per package, in a fresh folder outside the workspace, with only node, npm, npx and sh on PATH (no compiler):
//     `npm install --offline <its tarball> <the internal tarballs it needs>`, then run an ESM script, a CJS script,
//     a generic ESM/CJS export-parity script and `tsc --noEmit` on a TypeScript consumer (module nodenext, strict,
//     declarations checked). Fixtures: tools/pack-check/<dir name>/{esm.mjs,cjs.cjs,consumer.mts,commands.json};
//     a package without them gets the generic checks only. A native package must load its prebuild (no build/).
//  4. Print a table of tarball / installed sizes and what each install pulls in; one line "N passed, N failed".
// Options: --only a,b (package or dir names; their internal deps are packed too), --keep (keep the temp folder),
// --report FILE (vitest-shaped JSON for tools/test-summary.mjs), --write-docs (refresh the table in docs/packaging.md).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(REPO, 'tools', 'pack-check');
const DOCS = path.join(REPO, 'docs', 'packaging.md');
const SCOPE = '@semanticache/';
const started = Date.now();

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    report: { type: 'string' },
    'write-docs': { type: 'boolean', default: false },
  },
});

// ---------------------------------------------------------------------------------------------------------- helpers

const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;
const log = (line) => process.stdout.write(`${line}\n`);

/** Runs a command to completion, output captured; never throws. */
function run(file, args, { cwd, env = process.env, timeoutS = 300 } = {}) {
  const t0 = Date.now();
  const r = spawnSync(file, args, {
    cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: timeoutS * 1000,
    killSignal: 'SIGKILL',
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  let error = null;
  if (r.error?.code === 'ETIMEDOUT') error = `timed out after ${timeoutS}s`;
  else if (r.error) error = r.error.message;
  else if (r.status !== 0) error = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
  return { ok: !error, error, output, stdout: r.stdout ?? '', ms: Date.now() - t0 };
}

const tail = (text, lines = 40) => text.trimEnd().split('\n').slice(-lines).join('\n');
const describe = (cmd, r) => `\`${cmd}\` failed (${r.error}):\n${tail(r.output)}`;

function which(name, pathVar = process.env.PATH ?? '') {
  for (const dir of pathVar.split(path.delimiter)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {}
  }
  return null;
}

/** Apparent size of a folder's files (bytes), not descending into nested node_modules when told so. */
function folderBytes(dir, { skipNodeModules = false } = {}) {
  let total = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (!(skipNodeModules && e.name === 'node_modules')) stack.push(p);
      } else if (e.isFile()) total += fs.statSync(p).size;
    }
  }
  return total;
}

/** Decimal units, as npm prints them. */
function size(bytes) {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const short = (name) => name.replace(SCOPE, '');

// ------------------------------------------------------------------------------------------------ results & cleanup

const results = []; // { pkg, check, ok, ms, message }
const phases = []; // [name, start ms]
const phase = (name) => phases.push([name, Date.now()]);
function record(pkg, check, ok, ms, message = '') {
  results.push({ pkg, check, ok, ms, message });
  log(`${ok ? 'ok  ' : 'FAIL'} ${pkg} ${check}${ms ? ` (${seconds(ms)})` : ''}${ok && message ? ` ${message}` : ''}`);
  if (!ok) log(message.replace(/^/gm, '     | '));
}

let tmpRoot = null;
function cleanup() {
  if (!tmpRoot) return;
  if (opts.keep) log(`kept ${tmpRoot}`);
  else fs.rmSync(tmpRoot, { recursive: true, force: true });
  tmpRoot = null;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

function finish(table) {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  if (opts.report) writeReport(opts.report);
  cleanup();
  if (table) log(`\n${table}`);
  const failures = results.filter((r) => !r.ok).map((r) => `${r.pkg} ${r.check}`);
  if (failures.length) log(`\nfailed: ${failures.join(', ')}`);
  const now = Date.now();
  const times = phases.map(([name, t], i) => `${name} ${seconds((phases[i + 1]?.[1] ?? now) - t)}`);
  if (times.length) log(`time: ${times.join(', ')}`);
  log(`pack-check: ${passed} passed, ${failed} failed (${seconds(now - started)})`);
  process.exit(failed > 0 || passed === 0 ? 1 : 0);
}

/** A report in vitest's JSON reporter shape, so tools/test-summary.mjs adds these checks to its closing line. */
function writeReport(file) {
  const byPkg = new Map();
  for (const r of results) byPkg.set(r.pkg, [...(byPkg.get(r.pkg) ?? []), r]);
  const failedSuites = [...byPkg.values()].filter((rs) => rs.some((r) => !r.ok)).length;
  const report = {
    numTotalTestSuites: byPkg.size,
    numPassedTestSuites: byPkg.size - failedSuites,
    numFailedTestSuites: 0, // failures are counted per check below, not again per package
    numTotalTests: results.length,
    numPassedTests: results.filter((r) => r.ok).length,
    numFailedTests: results.filter((r) => !r.ok).length,
    numPendingTests: 0,
    numTodoTests: 0,
    startTime: started,
    success: results.every((r) => r.ok),
    testResults: [...byPkg].map(([pkg, rs]) => ({
      name: `pack-check ${pkg}`,
      status: rs.every((r) => r.ok) ? 'passed' : 'failed',
      assertionResults: rs.map((r) => ({
        title: r.check,
        fullName: `${pkg} ${r.check}`,
        status: r.ok ? 'passed' : 'failed',
        duration: r.ms,
        failureMessages: r.ok ? [] : [r.message],
      })),
    })),
  };
  fs.mkdirSync(path.dirname(path.resolve(REPO, file)), { recursive: true });
  fs.writeFileSync(path.resolve(REPO, file), `${JSON.stringify(report, null, 2)}\n`);
}

// -------------------------------------------------------------------------------------------------------- discover

const pnpm = which('pnpm');
if (!pnpm) {
  record('workspace', 'discover', false, 0, 'pnpm is not on PATH (source tools/env.sh, or run bash tools/setup.sh)');
  finish();
}
const listed = run(pnpm, ['ls', '-r', '--depth', '-1', '--json'], { cwd: REPO, timeoutS: 120 });
let workspace;
try {
  if (!listed.ok) throw new Error(describe('pnpm ls -r --depth -1 --json', listed));
  workspace = JSON.parse(listed.stdout).map((p) => ({
    dir: p.path,
    manifest: readJson(path.join(p.path, 'package.json')),
  }));
} catch (e) {
  record('workspace', 'discover', false, 0, e.message);
  finish();
}
const byName = new Map(workspace.map((w) => [w.manifest.name, w]));
const isPublic = (w) => w.manifest.private !== true;

/** Workspace packages a package needs at run time (dependencies, optional and required peers), transitively. */
function internalClosure(name, seen = new Set()) {
  const m = byName.get(name).manifest;
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
    for (const dep of Object.keys(m[field] ?? {})) {
      if (byName.has(dep) && !seen.has(dep)) {
        seen.add(dep);
        internalClosure(dep, seen);
      }
    }
  }
  return seen;
}

let targets = workspace.filter(isPublic).map((w) => w.manifest.name);
if (opts.only) {
  const wanted = opts.only.split(',').map((s) => s.trim());
  targets = targets.filter(
    (n) => wanted.includes(n) || wanted.includes(short(n)) || wanted.includes(path.basename(byName.get(n).dir)),
  );
  if (!targets.length) {
    record('workspace', 'discover', false, 0, `--only ${opts.only} matches no publishable package`);
    finish();
  }
}
const deps = new Map(targets.map((n) => [n, [...internalClosure(n)].sort()]));
// leaves first, so a broken dependency shows up before its dependents
targets.sort((a, b) => deps.get(a).length - deps.get(b).length || a.localeCompare(b));
const toPack = [...new Set(targets.flatMap((n) => [n, ...deps.get(n)]))];
for (const n of targets) {
  const priv = deps.get(n).filter((d) => !isPublic(byName.get(d)));
  if (priv.length)
    record(short(n), 'discover', false, 0, `depends on private workspace package(s): ${priv.join(', ')}`);
}
log(`pack-check: ${targets.length} publishable packages: ${targets.map(short).join(', ')}`);

// --------------------------------------------------------------------------------------------------------- set up

tmpRoot = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'semanticache-pack-check-'));
if (tmpRoot.startsWith(`${REPO}${path.sep}`)) {
  record('workspace', 'temp folder', false, 0, `${tmpRoot} is inside the workspace; set TMPDIR elsewhere`);
  finish();
}
// Node and tsc look up node_modules in every parent folder: one there would satisfy imports the tarballs lack.
for (let d = path.dirname(tmpRoot); ; d = path.dirname(d)) {
  if (fs.existsSync(path.join(d, 'node_modules'))) {
    record('workspace', 'temp folder', false, 0, `${path.join(d, 'node_modules')} exists above the temp folder`);
    finish();
  }
  if (path.dirname(d) === d) break;
}
const tarballDir = path.join(tmpRoot, 'tarballs');
const npmCache = path.join(tmpRoot, 'npm-cache');
fs.mkdirSync(tarballDir);

// A PATH with node, npm, npx and sh only: no g++/cc/make/python3, so nothing can be compiled.
const binDir = path.join(tmpRoot, 'bin');
fs.mkdirSync(binDir);
for (const [name, file] of [
  ['node', process.execPath],
  ['npm', which('npm')],
  ['npx', which('npx')],
  ['sh', which('sh')],
]) {
  if (!file) {
    record('workspace', 'tools', false, 0, `${name} is not on PATH`);
    finish();
  }
  fs.symlinkSync(file, path.join(binDir, name));
}
const cleanEnv = {};
for (const [k, v] of Object.entries(process.env)) {
  // pnpm-injected npm_* settings, module search paths, and compilers named by variable stay out
  if (/^(npm_|pnpm_|NODE_PATH$|NODE_OPTIONS$|INIT_CWD$|CC$|CXX$|PYTHON$|TURBO_)/i.test(k)) continue;
  cleanEnv[k] = v;
}
const consumerEnv = {
  ...cleanEnv,
  PATH: binDir,
  npm_config_cache: npmCache,
  npm_config_update_notifier: 'false',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  // onnxruntime-node's postinstall would fetch CUDA libraries from NuGet (docs/install.md)
  ONNXRUNTIME_NODE_INSTALL: 'skip',
  PACK_CHECK_REPO: REPO,
};
const npmFlags = ['--no-audit', '--no-fund', '--loglevel=warn'];
// by absolute path: a bare name would be looked up on this process's PATH, not the consumer's
const NPM = path.join(binDir, 'npm');
const NODE = path.join(binDir, 'node');
const tool = (name) => (fs.existsSync(path.join(binDir, name)) ? path.join(binDir, name) : name);

const repoRequire = createRequire(path.join(REPO, 'package.json'));
let tscBin;
let typesNodeRoot;
try {
  tscBin = repoRequire.resolve('typescript/bin/tsc');
  // the workspace's pinned @types/node, found through typeRoots: nothing extra is installed into the consumers
  typesNodeRoot = path.dirname(path.dirname(repoRequire.resolve('@types/node/package.json')));
} catch (e) {
  record('workspace', 'tools', false, 0, `typescript or @types/node missing from the workspace root: ${e.message}`);
  finish();
}

// ------------------------------------------------------------------------------------------------------------ pack

phase('pack');
const tarballs = new Map(); // name → absolute path
log(`\n== pack (${toPack.length} packages) into ${tarballDir}`);
for (const name of toPack) {
  const w = byName.get(name);
  const expected = path.join(tarballDir, `${name.replace(/^@/, '').replace('/', '-')}-${w.manifest.version}.tgz`);
  const r = run(pnpm, ['pack', '--pack-destination', tarballDir], { cwd: w.dir, timeoutS: 600 });
  if (r.ok && fs.existsSync(expected)) {
    tarballs.set(name, expected);
    record(short(name), 'pack', true, r.ms, size(fs.statSync(expected).size));
  } else {
    record(
      short(name),
      'pack',
      false,
      r.ms,
      r.ok ? `no ${path.basename(expected)} after pnpm pack` : describe('pnpm pack', r),
    );
  }
}

// ----------------------------------------------------------------------- resolve and fetch (the only network use)

phase('resolve+fetch');
const ready = targets.filter((n) => [n, ...deps.get(n)].every((d) => tarballs.has(d)));
const specs = new Set();
log(`\n== resolve against the registry, fetch third-party tarballs into ${npmCache}`);
const resolveOk = new Set();
for (const name of ready) {
  const dir = path.join(tmpRoot, 'resolve', short(name));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "name": "resolve", "version": "0.0.0", "private": true }\n');
  const files = [name, ...deps.get(name)].map((d) => tarballs.get(d));
  const args = ['install', '--package-lock-only', '--ignore-scripts', '--prefer-offline', ...npmFlags, ...files];
  const r = run(NPM, args, { cwd: dir, env: consumerEnv });
  if (!r.ok) {
    record(short(name), 'resolve', false, r.ms, describe('npm install --package-lock-only', r));
    continue;
  }
  for (const [key, entry] of Object.entries(readJson(path.join(dir, 'package-lock.json')).packages)) {
    if (!key || entry.link || entry.resolved?.startsWith('file:')) continue;
    specs.add(`${entry.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${entry.version}`);
  }
  resolveOk.add(name);
}
if (specs.size) {
  const r = run(NPM, ['cache', 'add', ...npmFlags, ...specs], { cwd: tmpRoot, env: consumerEnv, timeoutS: 600 });
  record('third-party', 'fetch', r.ok, r.ms, r.ok ? `${specs.size} packages` : describe('npm cache add', r));
  if (!r.ok) resolveOk.clear();
}
fs.rmSync(path.join(tmpRoot, 'resolve'), { recursive: true, force: true });

// ---------------------------------------------------------------------------------------------- install and check

phase('install+checks');
const measured = [];
const tsconfig = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    lib: ['es2022'],
    strict: true,
    noEmit: true,
    skipLibCheck: false, // the point: the published .d.ts / .d.cts must compile in a consumer
    types: ['node'],
    typeRoots: [typesNodeRoot],
  },
  files: ['consumer.mts', 'exports.mts', 'exports.cts'],
};

function exportsScript(name) {
  return `// generated by tools/pack-check.mjs: the ESM and CJS entry points export the same names
import { createRequire } from 'node:module';
const name = ${JSON.stringify(name)};
const require = createRequire(import.meta.url);
const esm = await import(name);
const cjs = require(name);
const keys = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort();
const e = keys(esm);
const c = keys(cjs);
if (e.length === 0) throw new Error(name + ': the ESM entry exports nothing');
const onlyEsm = e.filter((k) => !c.includes(k));
const onlyCjs = c.filter((k) => !e.includes(k));
if (onlyEsm.length || onlyCjs.length) throw new Error(name + ': ESM-only ' + onlyEsm + '; CJS-only ' + onlyCjs);
const kinds = e.filter((k) => typeof esm[k] !== typeof cjs[k]);
if (kinds.length) throw new Error(name + ': ESM and CJS disagree on the kind of ' + kinds);
if (require(name + '/package.json').name !== name) throw new Error(name + '/package.json is not exported');
console.log(e.length + ' exports');
`;
}

/** Prebuild check: nothing compiled, and node-gyp-build picks a file under prebuilds/. */
function checkNative(name, consumer, pkgDir) {
  const t0 = Date.now();
  const problems = [];
  if (fs.existsSync(path.join(pkgDir, 'build'))) problems.push(`${pkgDir}/build exists: the install compiled`);
  const probe = `const d=${JSON.stringify(pkgDir)};console.log(require(require.resolve('node-gyp-build',{paths:[d]})).path(d))`;
  const r = run(NODE, ['-e', probe], { cwd: consumer, env: consumerEnv, timeoutS: 60 });
  if (!r.ok) problems.push(describe('node-gyp-build path', r));
  else if (!r.stdout.includes(`${path.sep}prebuilds${path.sep}`))
    problems.push(`loads ${r.stdout.trim()}, not a prebuild`);
  const binary = r.ok ? path.relative(pkgDir, r.stdout.trim()) : '';
  record(short(name), 'no-compiler install', problems.length === 0, Date.now() - t0, problems.join('\n') || binary);
}

for (const name of targets) {
  const s = short(name);
  const fixture = path.join(FIXTURES, path.basename(byName.get(name).dir));
  const hasFixture = fs.existsSync(path.join(fixture, 'esm.mjs'));
  const checks = ['install', 'exports', 'esm', 'cjs', 'types'];
  const commands = fs.existsSync(path.join(fixture, 'commands.json'))
    ? readJson(path.join(fixture, 'commands.json'))
    : [];
  if (!resolveOk.has(name)) {
    for (const c of checks) record(s, c, false, 0, 'not run: its tarballs could not be packed or resolved');
    continue;
  }
  log(`\n== ${name}${hasFixture ? '' : ' (no fixture in tools/pack-check: generic checks only)'}`);
  const consumer = path.join(tmpRoot, 'consumer', s);
  fs.mkdirSync(consumer, { recursive: true });
  fs.writeFileSync(
    path.join(consumer, 'package.json'),
    `{ "name": "consumer-${s}", "version": "0.0.0", "private": true }\n`,
  );

  // install, offline: everything third-party comes from the cache filled above
  const files = [name, ...deps.get(name)].map((d) => tarballs.get(d));
  const inst = run(NPM, ['install', '--offline', ...npmFlags, ...files], { cwd: consumer, env: consumerEnv });
  if (!inst.ok) {
    record(
      s,
      'install',
      false,
      inst.ms,
      describe(`npm install --offline ${files.map((f) => path.basename(f)).join(' ')}`, inst),
    );
    for (const c of checks.slice(1)) record(s, c, false, 0, 'not run: install failed');
    fs.rmSync(consumer, { recursive: true, force: true });
    continue;
  }
  // what came in: every package npm put in node_modules, from its hidden lockfile
  const installed = [];
  const lock = readJson(path.join(consumer, 'node_modules', '.package-lock.json')).packages;
  for (const [key, entry] of Object.entries(lock)) {
    if (!key.startsWith('node_modules/') || entry.link) continue;
    const pkgName = entry.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const requires = Object.keys({ ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies });
    const dir = path.join(consumer, key);
    installed.push({
      key,
      name: pkgName,
      version: entry.version,
      requires,
      dir,
      bytes: folderBytes(dir, { skipNodeModules: true }),
    });
  }
  const problems = [];
  const ours = installed.filter((p) => p.name.startsWith(SCOPE));
  const expectedOurs = [name, ...deps.get(name)].sort();
  const gotOurs = ours.map((p) => p.name).sort();
  if (gotOurs.join() !== expectedOurs.join())
    problems.push(`installed ${gotOurs.join(', ')}; expected ${expectedOurs.join(', ')}`);
  for (const p of ours) {
    const m = readJson(path.join(p.dir, 'package.json'));
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const [dep, range] of Object.entries(m[field] ?? {})) {
        if (String(range).startsWith('workspace:')) problems.push(`${p.name} ${field}.${dep} is still "${range}"`);
      }
    }
    // only a native package's prebuild check below names the binary; any package must install without compiling
    if (fs.existsSync(path.join(p.dir, 'build'))) problems.push(`${p.dir}/build exists: the install compiled`);
  }
  const self = ours.find((p) => p.name === name);
  const nodeModulesBytes = folderBytes(path.join(consumer, 'node_modules'));
  record(
    s,
    'install',
    problems.length === 0,
    inst.ms,
    problems.join('\n') || `${installed.length} packages, ${size(nodeModulesBytes)}`,
  );
  if (
    self &&
    (fs.existsSync(path.join(self.dir, 'binding.gyp')) || readJson(path.join(self.dir, 'package.json')).gypfile)
  ) {
    checkNative(name, consumer, self.dir);
  }

  // scripts and the TypeScript consumer
  fs.writeFileSync(path.join(consumer, 'exports.mjs'), exportsScript(name));
  fs.writeFileSync(
    path.join(consumer, 'exports.mts'),
    `import * as pkg from '${name}';\nexport const names: string[] = Object.keys(pkg);\n`,
  );
  fs.writeFileSync(
    path.join(consumer, 'exports.cts'),
    `import pkg = require('${name}');\nexport const names: string[] = Object.keys(pkg);\n`,
  );
  if (hasFixture) {
    for (const f of fs.readdirSync(fixture)) fs.copyFileSync(path.join(fixture, f), path.join(consumer, f));
  } else {
    fs.writeFileSync(
      path.join(consumer, 'esm.mjs'),
      `const m = await import('${name}');\nconsole.log(Object.keys(m).length + ' exports');\n`,
    );
    fs.writeFileSync(
      path.join(consumer, 'cjs.cjs'),
      `const m = require('${name}');\nconsole.log(Object.keys(m).length + ' exports');\n`,
    );
    fs.writeFileSync(
      path.join(consumer, 'consumer.mts'),
      `import * as pkg from '${name}';\nexport const n: number = Object.keys(pkg).length;\n`,
    );
  }
  fs.writeFileSync(path.join(consumer, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
  const lastLine = (r) => r.stdout.trim().split('\n').at(-1) ?? '';
  for (const [check, file] of [
    ['exports', 'exports.mjs'],
    ['esm', 'esm.mjs'],
    ['cjs', 'cjs.cjs'],
  ]) {
    const r = run(NODE, [file], { cwd: consumer, env: consumerEnv, timeoutS: 180 });
    record(s, check, r.ok, r.ms, r.ok ? lastLine(r) : describe(`node ${file}`, r));
  }
  const tsc = run(NODE, [tscBin, '-p', 'tsconfig.json'], { cwd: consumer, env: consumerEnv, timeoutS: 180 });
  record(s, 'types', tsc.ok, tsc.ms, tsc.ok ? 'tsc --noEmit' : describe('tsc --noEmit -p tsconfig.json', tsc));
  for (const c of commands) {
    const version = readJson(path.join(self?.dir ?? consumer, 'package.json')).version;
    const r = run(tool(c.run[0]), c.run.slice(1), { cwd: consumer, env: consumerEnv, timeoutS: c.timeoutS ?? 300 });
    const expect = new RegExp(c.expect.replaceAll('{version}', version.replaceAll('.', '\\.')), 'm');
    const ok = r.ok && expect.test(r.stdout);
    const shown = c.run.join(' ');
    const message = !r.ok
      ? describe(shown, r)
      : ok
        ? ''
        : `\`${shown}\` printed no match for /${expect.source}/:\n${tail(r.output)}`;
    record(s, `\`${shown}\``, ok, r.ms, message);
  }

  const thirdParty = installed.filter((p) => !p.name.startsWith(SCOPE)).sort((a, b) => b.bytes - a.bytes);
  // group them under the direct dependency (of one of our packages) that brought them in
  const byKey = new Map(installed.map((p) => [p.key, p]));
  const resolveDep = (from, dep) => {
    for (let k = from; ; k = k.slice(0, k.lastIndexOf('/node_modules/'))) {
      const hit = byKey.get(`${k}/node_modules/${dep}`);
      if (hit) return hit;
      if (!k.includes('/node_modules/')) return byKey.get(`node_modules/${dep}`);
    }
  };
  const seen = new Set(installed.filter((p) => p.name.startsWith(SCOPE)).map((p) => p.key));
  const direct = [];
  for (const p of installed.filter((q) => q.name.startsWith(SCOPE))) {
    for (const dep of p.requires) {
      const hit = resolveDep(p.key, dep);
      if (hit && !seen.has(hit.key)) {
        seen.add(hit.key);
        direct.push({ ...hit, via: [hit] });
      }
    }
  }
  for (const root of direct) {
    for (let i = 0; i < root.via.length; i++) {
      for (const dep of root.via[i].requires) {
        const hit = resolveDep(root.via[i].key, dep);
        if (hit && !seen.has(hit.key)) {
          seen.add(hit.key);
          root.via.push(hit);
        }
      }
    }
    root.total = root.via.reduce((a, q) => a + q.bytes, 0);
  }
  direct.sort((a, b) => b.total - a.total);
  measured.push({
    name,
    tarball: fs.statSync(tarballs.get(name)).size,
    unpacked: self?.bytes ?? 0,
    installed: nodeModulesBytes,
    installMs: inst.ms,
    internal: deps.get(name),
    thirdParty,
    direct,
    generic: !hasFixture,
  });
  fs.rmSync(consumer, { recursive: true, force: true });
}

// ----------------------------------------------------------------------------------------------------------- table

/** Each direct third-party dependency, with the size of everything it brought along. */
function thirdPartyCell(m) {
  if (!m.thirdParty.length) return 'none';
  const each = m.direct.map((d) => {
    const more = d.via.length > 1 ? ` with ${d.via.length - 1} more` : '';
    return `${d.name} ${d.version}${more} (${size(d.total)})`;
  });
  return `${m.thirdParty.length}: ${each.join('; ')}`;
}

function renderTable() {
  if (!measured.length) return '';
  const rows = [
    '| package | tarball | unpacked | installed (node_modules) | @semanticache packages it pulls in | third-party packages it pulls in |',
    '| --- | ---: | ---: | ---: | --- | --- |',
  ];
  for (const m of measured) {
    const internal = m.internal.length ? m.internal.map(short).join(', ') : 'none';
    const cells = [`\`${m.name}\``, size(m.tarball), size(m.unpacked), size(m.installed), internal, thirdPartyCell(m)];
    rows.push(`| ${cells.join(' | ')} |`);
  }
  return rows.join('\n');
}

/** Every third-party package of every install, grouped by the direct dependency that brought it in. */
function renderDetails() {
  return measured
    .map((m) => {
      const groups = m.direct.map((d) =>
        [d.via[0], ...d.via.slice(1).sort((a, b) => b.bytes - a.bytes)]
          .map((p) => `${p.name}@${p.version} ${size(p.bytes)}`)
          .join(', '),
      );
      const what = groups.length ? groups.join('; ') : 'no third-party package';
      return `- \`${m.name}\` (\`npm install\` ${seconds(m.installMs)}${m.generic ? '; generic checks only' : ''}): ${what}`;
    })
    .join('\n');
}

const table = renderTable();
if (opts['write-docs'] && measured.length && !opts.only) {
  const failedAny = results.some((r) => !r.ok);
  const text = fs.readFileSync(DOCS, 'utf8');
  const begin = '<!-- pack-check:begin -->';
  const end = '<!-- pack-check:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (failedAny) log('\nnot writing docs/packaging.md: some checks failed');
  else if (i < 0 || j < i) log(`\nnot writing docs/packaging.md: no ${begin} … ${end} markers`);
  else {
    const npmVersion = run(NPM, ['--version'], { env: consumerEnv }).stdout.trim();
    const date = new Date().toISOString().slice(0, 10);
    const block = [
      begin,
      `Generated by \`node tools/pack-check.mjs --write-docs\` on ${date} (Node.js ${process.versions.node}, npm ${npmVersion},`,
      `${os.platform()}-${os.arch()}; sizes in decimal kB/MB, apparent file sizes; versions as the registry resolved them that day).`,
      '',
      table,
      '',
      'Every third-party package per install, grouped by the direct dependency that brings it in:',
      '',
      renderDetails(),
      end,
    ].join('\n');
    fs.writeFileSync(DOCS, text.slice(0, i) + block + text.slice(j + end.length));
    log('\nwrote the table into docs/packaging.md');
  }
}
finish(table);
