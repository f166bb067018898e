#!/bin/sh
# Builds the demo page bundle (dist/app.js) with esbuild; called by the CMake target
# mf_web. Installs the locked npm packages first when node_modules is missing. A failure
# here (e.g. no network for `npm ci`) does not fail the C build: the node still runs,
# only /app/ is missing its script, and the browser test says so.
set -u
cd "$(dirname "$0")" || exit 0
if [ ! -d node_modules ]; then
  if ! npm ci --no-audit --no-fund; then
    echo "WARNING: node/web: 'npm ci' failed; the demo page is not built" >&2
    exit 0
  fi
fi
if ! npm run --silent build; then
  echo "WARNING: node/web: 'npm run build' failed; the demo page is not built" >&2
  exit 0
fi
