#!/usr/bin/env bash
# Install the pinned pnpm (into .tools/ unless it is already on PATH), the workspace's dependencies, and build.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
PNPM_VERSION=12.4.2
if ! command -v pnpm >/dev/null || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  npm install --prefix .tools --no-save --no-package-lock --no-audit --no-fund "pnpm@$PNPM_VERSION" >/dev/null
fi
# apps/server's tests start their own redis-server (loopback, no persistence); install it when missing. The package's
# own service is kept from starting (policy-rc.d): nothing here needs a system-wide Redis.
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing redis-server (apt) for apps/server's tests"
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; } >/dev/null ||
      echo "warning: apt-get could not install redis-server; apps/server's Redis tests will fail" >&2
    if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "note: redis-server is not installed; apps/server's Redis tests need it on PATH." >&2
    echo "      Debian/Ubuntu: sudo apt-get install redis-server   macOS: brew install redis" >&2
  fi
fi
pnpm install --frozen-lockfile
pnpm build
