# Environment every script here needs; sourced, not executed.
# pnpm's bundled node-gyp ignores npmrc's nodedir and would fetch headers from the network: point it at the local ones.
NODE_PREFIX="$(dirname "$(dirname "$(command -v node)")")"
export npm_config_nodedir="${npm_config_nodedir:-$NODE_PREFIX}"
export TURBO_TELEMETRY_DISABLED=1
export ONNXRUNTIME_NODE_INSTALL=skip
# A pnpm installed by tools/setup.sh into the checkout (no global write access needed) comes first.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$REPO_ROOT/.tools/node_modules/.bin:$PATH"
