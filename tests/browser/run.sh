#!/bin/sh
# ctest entry for the browser tests: installs playwright-core from the lock file when
# node_modules is missing (never a browser: Debian's /usr/bin/chromium is used), then runs
# a test script (default room.test.mjs) against the given mafalda-node and demo page
# directory; further arguments go to the script (cluster.test.mjs: the controller binary).
# Usage: run.sh <mafalda-node> <repo>/node/web [script.mjs [args...]]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$2/dist/app.js" ]; then
  echo "FAIL: $2/dist/app.js is missing: the demo page was not built (see node/web/build.sh)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
node_bin=$1
web_dir=$2
script=room.test.mjs
if [ $# -ge 3 ]; then
  script=$3
  shift 3
else
  shift 2
fi
exec node "$here/$script" "$node_bin" "$web_dir" "$@"
