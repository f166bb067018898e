#!/bin/sh
# ctest entry for the SDK's node:test suites: installs the locked npm dependencies (ws,
# playwright-core; never a browser) when node_modules is missing, then runs the given test
# files one at a time against the given mafalda-node.
# Usage: run.sh <mafalda-node> <test file>...
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/node_modules/ws" ] || [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
MAFALDA_NODE_BIN=$1
export MAFALDA_NODE_BIN
shift
cd "$here"
exec node --test --test-concurrency=1 "$@"
