#!/usr/bin/env bash
# Set up, then run every package's tests and print one closing line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || exit 1
source tools/env.sh
find packages apps examples -name .vitest-result.json -not -path '*/node_modules/*' -delete
pnpm test
status=$?
# pack every publishable package, install each alone from its tarball and use it (docs/packaging.md)
node tools/pack-check.mjs --report packages/.pack-check/.vitest-result.json || status=1
node tools/test-summary.mjs || status=1
exit $status
