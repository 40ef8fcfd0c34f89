#!/usr/bin/env bash
# Install the pinned pnpm (into .tools/ unless it is already on PATH), the workspace's dependencies, and build.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
PNPM_VERSION=12.4.2
if ! command -v pnpm >/dev/null || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  npm install --prefix .tools --no-save --no-package-lock --no-audit --no-fund "pnpm@$PNPM_VERSION" >/dev/null
fi
pnpm install --frozen-lockfile
pnpm build
