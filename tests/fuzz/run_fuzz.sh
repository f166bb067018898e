#!/usr/bin/env bash
# Runs every libFuzzer target of a `make fuzz` build for a bounded time (`make fuzz` calls
# this after building). Each target gets a scratch corpus, a fresh copy of
# tests/fuzz/corpus/<name>/ (libFuzzer adds what it finds to the FIRST directory, so the
# committed seeds never change), and -max_total_time=<seconds>. Crash, leak, timeout and
# out-of-memory inputs are written to <build>/crashes/<target>-<kind>-<sha1> (those of the
# previous run move to <build>/crashes.prev). Targets run
# <jobs> at a time. Exit status 1 when any target failed, with the inputs listed: reproduce
# one with `<build>/tests/fuzz/<target> <input>`, then commit it as a seed (it becomes a
# regression test of the normal build) together with the fix.
# Usage: run_fuzz.sh <fuzz build dir> <seconds per target> [jobs]
set -euo pipefail
build=${1:?usage: run_fuzz.sh <fuzz build dir> <seconds per target> [jobs]}
seconds=${2:?seconds per target}
jobs=${3:-1}
src=$(cd "$(dirname "$0")" && pwd)
bin=$build/tests/fuzz
crashes=$build/crashes
logs=$build/fuzz-logs
# inputs of an earlier run (maybe fixed since) move aside instead of failing this one
rm -rf "$crashes.prev"
if [[ -d $crashes ]]; then mv "$crashes" "$crashes.prev"; fi
mkdir -p "$crashes" "$logs"
rm -rf "$build/fuzz-corpus"

targets=()
for f in "$bin"/fuzz_*; do
  [[ -x $f && -f $f ]] && targets+=("$(basename "$f")")
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "run_fuzz.sh: no fuzz targets in $bin (build with -DMF_FUZZ=ON first)" >&2
  exit 2
fi

run_one() { # target
  local t=$1 name=${1#fuzz_}
  local corpus=$build/fuzz-corpus/$name
  mkdir -p "$corpus"
  if [[ -d $src/corpus/$name ]]; then cp -r "$src/corpus/$name/." "$corpus/"; fi
  local rc=0
  # -timeout: an input running 10 s counts as a hang; -rss_limit_mb: the default 2 GiB.
  # A deadline above max_total_time ends a target that stops answering altogether.
  timeout -s KILL $((seconds + 120)) "$bin/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/$t-" "$corpus" \
    >"$logs/$t.log" 2>&1 || rc=$?
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -n 1 | grep -o '[0-9]*$' || true)
  if [[ $rc -eq 0 ]]; then
    printf 'ok   %-26s %10s runs  cov %-6s corpus %s files\n' "$t" "${runs:-?}" "${cov:-?}" \
      "$(find "$corpus" -type f | wc -l)"
  else
    printf 'FAIL %-26s exit %s, log %s\n' "$t" "$rc" "$logs/$t.log"
    grep -E '^==[0-9]+==ERROR|SUMMARY|Test unit written|^artifact_prefix' "$logs/$t.log" | head -n 8 | sed 's/^/     /'
  fi
  return $rc
}
export -f run_one
export build bin crashes logs src seconds

echo "fuzzing ${#targets[@]} targets for ${seconds} s each, $jobs at a time (logs in $logs)"
start=$SECONDS
failed=0
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} || failed=1
echo "fuzzing took $((SECONDS - start)) s"
if [[ $failed -ne 0 ]] || compgen -G "$crashes/*" >/dev/null; then
  echo "fuzzing found failing inputs (kept in $crashes):" >&2
  ls -l "$crashes" >&2 || true
  exit 1
fi
