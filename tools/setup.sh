#!/usr/bin/env bash
# Install the pinned pnpm, the workspace's dependencies, and build every package.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "12.4.2" ]; then
  npm i -g pnpm@12.4.2 >/dev/null
fi
pnpm install --frozen-lockfile
pnpm build
