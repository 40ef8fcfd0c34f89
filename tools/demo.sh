#!/usr/bin/env bash
# Set up, then run the demo on the embedded model: full cache vs SemantiCache, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh >&2
node apps/cli/dist/cli.js demo "$@"
