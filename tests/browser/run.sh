#!/bin/sh
# ctest entry for the browser test: installs playwright-core from the lock file when
# node_modules is missing (never a browser: Debian's /usr/bin/chromium is used), then runs
# room.test.mjs against the given mafalda-node and demo page directory.
# Usage: run.sh <mafalda-node> <repo>/node/web
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$2/dist/app.js" ]; then
  echo "FAIL: $2/dist/app.js is missing: the demo page was not built (see node/web/build.sh)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
exec node "$here/room.test.mjs" "$1" "$2"
