#!/usr/bin/env bash
# mafalda-controller as an operator sees it: --help/--version, clear exit status 2 for bad
# flags, a single-voter start, clean stop on SIGTERM and SIGINT, resume from its data dir.
# Every child runs under `timeout`; the trap kills whatever is left.
set -euo pipefail
ctl=${1:?usage: controller_flags.sh path/to/mafalda-controller}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failed=0
check() { # name, command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Two distinct free ports: a probe released at once may give the same port twice.
free_ports2() {
  python3 -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])'
}

wait_for() { # file pattern seconds
  local deadline=$((SECONDS + $3))
  while (( SECONDS < deadline )); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

exits_with() { # status, expected stderr text, flags...
  local want=$1 text=$2; shift 2
  local rc=0
  timeout -s KILL 10 "$ctl" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [[ $rc -eq $want ]] || { echo "exit $rc, want $want" >&2; cat "$tmp/err" >&2; return 1; }
  grep -q -- "$text" "$tmp/err" "$tmp/out" || { echo "no '$text'" >&2; cat "$tmp/err" >&2; return 1; }
}

check "--help" exits_with 0 "--snapshot-threshold" --help
check "--version" exits_with 0 "mafalda-controller" --version
check "unknown flag" exits_with 2 "mafalda-controller:" --no-such-flag
check "bad peers" exits_with 2 "expected id@host:port" --peers "1@" --data-dir "$tmp/x"
check "id not in peers" exits_with 2 "is not in the peer list" --id 4 --peers "1@127.0.0.1:1" \
  --listen 127.0.0.1:1 --data-dir "$tmp/x"
check "listen differs from peer" exits_with 2 "differs" --id 1 --peers "1@127.0.0.1:1" \
  --listen 127.0.0.1:2 --data-dir "$tmp/x"
check "snapshot threshold range" exits_with 2 "snapshot-threshold" --snapshot-threshold 1

run_and_stop() { # signal, expected log text
  local sig=$1 text=$2
  local log=$tmp/run-$sig.log
  local raft rpc
  read -r raft rpc < <(free_ports2)
  timeout -s KILL 30 "$ctl" --id 1 --listen "127.0.0.1:$raft" --rpc-listen "127.0.0.1:$rpc" \
    --data-dir "$tmp/single/data" --election-timeout 100 2>"$log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$log" "controller 1 ready" 20 || return 1
  grep -q -- "$text" "$log" || { echo "no '$text'" >&2; cat "$log" >&2; return 1; }
  # Signal the controller itself: signalling `timeout` makes it forward the signal twice
  # (child, then process group), and a late duplicate can land while LeakSanitizer's exit
  # check has the process stopped under ptrace, which then never finishes.
  local child
  child=$(cat "/proc/$pid/task/$pid/children")
  kill "-$sig" "$child"
  local rc=0
  wait "$pid" || rc=$?
  [[ $rc -eq 0 ]] || { echo "exit status $rc" >&2; cat "$log" >&2; return 1; }
  grep -q "received SIG$sig: stopping" "$log" && grep -q "controller stopped cleanly" "$log"
}

check "single voter bootstraps, stops on SIGTERM" run_and_stop TERM "bootstrapped with 1 voters"
check "restart resumes its data dir, stops on SIGINT" run_and_stop INT "has state: resuming"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
