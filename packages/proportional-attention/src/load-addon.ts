/**
 * Finds and loads the native addon through node-gyp-build (a local build in build/Release first, then a matching
 * prebuilt binary in prebuilds/<platform>-<arch>/), and turns a failure into an error that tells an npm user what
 * to do. Split out of index.ts so the failure paths can be tested against any directory.
 */
import fs from 'node:fs';

export const PACKAGE_NAME = '@semanticache/proportional-attention';

/** node-gyp-build's API: `load(dir)` requires the file `load.resolve(dir)` picks, which throws when none matches. */
export interface NodeGypBuild {
  (dir: string): unknown;
  resolve(dir: string): string;
}

export interface AddonHost {
  platform: string;
  arch: string;
  /** 'glibc 2.36', 'musl', or undefined off Linux. */
  libc?: string;
  node: string;
}

/** The running process, described the way the prebuilds are tagged. */
export function currentHost(): AddonHost {
  let libc: string | undefined;
  if (process.platform === 'linux') {
    // The same test node-gyp-build makes (LIBC, then /etc/alpine-release), plus the glibc version for the message.
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    if (process.env.LIBC) libc = process.env.LIBC;
    else if (fs.existsSync('/etc/alpine-release') || !header?.glibcVersionRuntime) libc = 'musl';
    else libc = `glibc ${header.glibcVersionRuntime}`;
  }
  return { platform: process.platform, arch: process.arch, libc, node: process.versions.node };
}

function describeHost(host: AddonHost): string {
  return `${host.platform}-${host.arch}${host.libc ? ` (${host.libc})` : ''}, Node.js ${host.node}`;
}

const FIX =
  'To build it from source, install a C++17 toolchain (g++ or clang++, make, python3; on Debian/Ubuntu ' +
  '`apt-get install g++ make python3`) and run `npm rebuild ' +
  PACKAGE_NAME +
  '` in your project (pnpm: `pnpm rebuild ' +
  PACKAGE_NAME +
  '`). An install with --ignore-scripts skips that build step; the rebuild runs it.';

/**
 * The message of the error thrown when the addon cannot be loaded. `file` is the binary node-gyp-build picked
 * (undefined when it found none); `cause` the underlying error.
 */
export function addonLoadErrorMessage(packageRoot: string, host: AddonHost, file?: string, cause?: unknown): string {
  if (file === undefined) {
    return (
      `${PACKAGE_NAME}: no prebuilt binary for ${describeHost(host)} and no local build ` +
      `(looked in ${packageRoot}/prebuilds and ${packageRoot}/build/Release). ${FIX}`
    );
  }
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return (
    `${PACKAGE_NAME}: the native binary ${file} does not load on ${describeHost(host)}: ${reason}. ` +
    `${FIX} A local build in build/Release takes precedence over the prebuilt binaries.`
  );
}

/** Loads the addon from packageRoot, or throws an Error with addonLoadErrorMessage (the original as `cause`). */
export function loadNativeAddon<T>(
  packageRoot: string,
  nodeGypBuild: NodeGypBuild,
  requireFile: (file: string) => unknown,
  host: () => AddonHost = currentHost,
): T {
  let file: string;
  try {
    file = nodeGypBuild.resolve(packageRoot);
  } catch (cause) {
    throw new Error(addonLoadErrorMessage(packageRoot, host(), undefined, cause), { cause });
  }
  try {
    return requireFile(file) as T;
  } catch (cause) {
    throw new Error(addonLoadErrorMessage(packageRoot, host(), file, cause), { cause });
  }
}
