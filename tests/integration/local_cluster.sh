#!/usr/bin/env bash
# deploy/local-cluster.sh end to end: `up` with 2 nodes (3 controller voters with a leader,
# 2 active nodes in `mafalda-ctl status --json`), a second `up` refused while it runs,
# `add-node` (the new node is active within 2 s of its process start), a port already
# taken is skipped, `down` leaves no process of the cluster (every recorded pid checked,
# timeout wrappers included, no socket left on its addresses), `down --purge` removes the
# folder, usage errors exit 2. Every child runs under MAFALDA_LOCAL_DEADLINE; the trap
# stops and kills whatever is left and removes the temp folder.
# Usage: local_cluster.sh local-cluster.sh mafalda-controller mafalda-node mafalda-ctl
# shellcheck disable=SC2015 # ok() never fails: `check && ok || fail` is if/else here
set -euo pipefail
script=${1:?usage: local_cluster.sh local-cluster.sh mafalda-controller mafalda-node mafalda-ctl}
export MAFALDA_CONTROLLER_BIN=${2:?} MAFALDA_NODE_BIN=${3:?} MAFALDA_CTL_BIN=${4:?}
export MAFALDA_LOCAL_DEADLINE=100
# The binaries read MAFALDA_* from the environment: none may leak in from the caller's.
unset MAFALDA_BIN_DIR MAFALDA_NODE_ARGS MAFALDA_CONTROLLER MAFALDA_JSON MAFALDA_JOIN

tmp=$(mktemp -d /tmp/mf-local-cluster-XXXXXX)
dir=$tmp/cluster
blocker_pid=""
cleanup() {
  local f pid _st wpid _wst
  [[ -z $blocker_pid ]] || kill -9 "$blocker_pid" 2>/dev/null || true
  if [[ -d $dir/pids ]]; then
    "$script" down --dir "$dir" --stop-timeout 3 >/dev/null 2>&1 || true
    for f in "$dir"/pids/*.pid; do
      [[ -e $f ]] || continue
      read -r pid _st wpid _wst <"$f"
      kill -9 "$pid" ${wpid:+"$wpid"} 2>/dev/null || true
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" INT TERM

failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
show_logs() { for f in "$dir"/logs/*.log; do echo "--- $f"; tail -n 15 "$f"; done; }

# status --json checks, in Python (the JSON schema is docs/controller.md's).
check_status() { # expected active node ips (comma-separated); reads JSON on stdin
  python3 -c '
import json, sys
want = sys.argv[1].split(",")
s = json.load(sys.stdin)
ctl = s["controllers"]
assert len(ctl) == 3, ctl
assert all(c["reachable"] and c["id"] in (1, 2, 3) for c in ctl), ctl
leaders = [c for c in ctl if c["role"] == "leader"]
assert len(leaders) == 1, ctl
assert s["leader_id"] == leaders[0]["id"], (s["leader_id"], leaders)
assert all(c["leader_id"] == s["leader_id"] for c in ctl), ctl
assert sorted(c["rpc_address"].split(":")[0] for c in ctl) == \
    ["127.0.0.11", "127.0.0.12", "127.0.0.13"], ctl
active = sorted(n["announced_ip"] for n in s["nodes"] if n["state"] == "active")
assert active == sorted(want), (active, want)
assert len(s["nodes"]) == len(want), s["nodes"]
assert s["totals"]["active_nodes"] == len(want), s["totals"]
' "$1"
}

# node_active_at IP: 0 when status --json shows that node active.
node_active() {
  "$script" status --dir "$dir" --json --timeout 1000 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if any(n["announced_ip"] == sys.argv[1] and n["state"] == "active"
                  for n in s["nodes"]) else 1)
' "$1"
}

# --- usage errors: exit 2, nothing started
rc=0; "$script" frobnicate >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] && ok "unknown command exits 2" || fail "unknown command exited $rc"
rc=0; "$script" up --nodes many --dir "$dir" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 && ! -e $dir ]] && ok "bad --nodes exits 2 and creates nothing" || fail "bad --nodes: $rc"
rc=0; "$script" status --dir "$dir" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 1 ]] && ok "status without a cluster exits 1" || fail "status without a cluster: $rc"

# A port taken on node 2's address (its preferred API port) must be skipped.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.22", 8080)); s.listen(1)
print("bound", flush=True); time.sleep(100)' >"$tmp/blocker.out" 2>&1 &
blocker_pid=$!
for _ in $(seq 50); do grep -q bound "$tmp/blocker.out" 2>/dev/null && break; sleep 0.05; done

# --- up
if ! "$script" up --nodes 2 --dir "$dir" >"$tmp/up.out" 2>&1; then
  cat "$tmp/up.out"; show_logs; echo "FAIL up"; exit 1
fi
cat "$tmp/up.out"
ok "up: 3 controllers and 2 nodes started, leader elected, nodes active"
if grep -q "^node-2: 127.0.0.22, API http://127.0.0.22:8080" "$tmp/up.out"; then
  fail "node 2 was given the taken port 8080"
elif grep -q "^node-2: 127.0.0.22, API http://127.0.0.22:80[0-9][0-9]" "$tmp/up.out"; then
  ok "a taken port is skipped (node 2's API moved off 8080)"
else
  fail "node 2's line is missing"
fi
kill "$blocker_pid" 2>/dev/null || true; blocker_pid=""

# status_holds IPS: status --json satisfies check_status, asked up to 10 times: a replica
# slow to answer status's 1 s probe (ASan, a loaded machine) shows as unreachable once.
status_holds() {
  for _ in $(seq 10); do
    out=$("$script" status --dir "$dir" --json 2>&1) && check_status "$1" <<<"$out" 2>/dev/null &&
      return 0
    sleep 0.5
  done
  echo "$out"; check_status "$1" <<<"$out" || true
  return 1
}
if status_holds 127.0.0.21,127.0.0.22; then
  ok "status --json: 3 voters, one leader they all agree on, 2 active nodes"
else
  show_logs; fail "status --json"
fi
text=$("$script" status --dir "$dir") || fail "status failed"
if grep -q "^Controllers: leader [123] at 127.0.0.1[123]:" <<<"$text" &&
   [[ $(grep -c "running (pid" <<<"$text") -eq 5 ]] &&
   grep -q "^Nodes: 2 (2 active)" <<<"$text"; then
  ok "status: process table (5 running) and mafalda-ctl's summary"
else
  echo "$text"; fail "status text"
fi

rc=0; "$script" up --nodes 1 --dir "$dir" >"$tmp/up2.out" 2>&1 || rc=$?
if [[ $rc -eq 1 ]] && grep -q "already runs" "$tmp/up2.out"; then
  ok "a second up on a running cluster is refused"
else
  cat "$tmp/up2.out"; fail "second up: exit $rc"
fi

# --- add-node: active within 2 s of its process start
t_cmd=$(date +%s.%N)
"$script" add-node --dir "$dir" --no-wait || fail "add-node"
started=$(sed -n 's/^STARTED=//p' "$dir/nodes/node-3.env")
active_at=""
for _ in $(seq 200); do
  if node_active 127.0.0.23; then active_at=$(date +%s.%N); break; fi
  sleep 0.1
done
if [[ -z $active_at ]]; then
  show_logs; fail "node 3 never became active"
else
  since_start=$(awk -v a="$started" -v b="$active_at" 'BEGIN { printf "%.2f", b - a }')
  since_cmd=$(awk -v a="$t_cmd" -v b="$active_at" 'BEGIN { printf "%.2f", b - a }')
  echo "# node 3 active ${since_start} s after its process started (${since_cmd} s after add-node was called; target <= 2 s)"
  if awk -v t="$since_start" 'BEGIN { exit !(t <= 2.0) }'; then
    ok "add-node: the new node is active within 2 s"
  else
    fail "add-node: active only after $since_start s"
  fi
fi
status_holds 127.0.0.21,127.0.0.22,127.0.0.23 &&
  ok "status --json after add-node: 3 active nodes" || fail "status after add-node"

# --- down: no process of the cluster left
pids=()
for f in "$dir"/pids/*.pid; do
  read -r pid _st wpid _wst <"$f"
  pids+=("$pid" "$wpid") # wrappers too: MAFALDA_LOCAL_DEADLINE put each child under timeout
done
[[ ${#pids[@]} -eq 12 ]] && ok "12 pids recorded (6 processes + their timeout wrappers)" ||
  fail "${#pids[@]} pids recorded"
addresses=$(cat "$dir/cluster.env" "$dir"/nodes/*.env | grep -o '127\.0\.0\.[0-9]*:[0-9]*' | sort -u)
t_down=$(date +%s.%N)
if "$script" down --dir "$dir" >"$tmp/down.out" 2>&1; then
  cat "$tmp/down.out"
  echo "# down took $(awk -v a="$t_down" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
else
  cat "$tmp/down.out"; fail "down"
fi
left=()
for p in "${pids[@]}"; do
  # A zombie is gone for our purpose (its parent reaps it); anything else is a leftover.
  if [[ -e /proc/$p ]] && [[ $(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) != Z ]]; then
    left+=("$p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
  fi
done
if [[ ${#left[@]} -eq 0 ]]; then ok "down: none of the 12 processes is left"
else printf '  left: %s\n' "${left[@]}"; fail "down left processes"; fi
bound=$(ss -Hlntu | awk '{ print $5 }' | grep -Fx -f <(echo "$addresses") || true)
[[ -z $bound ]] && ok "down: no socket left on the cluster's addresses" || fail "still bound: $bound"
if [[ $(grep -c "node stopped cleanly" "$dir"/logs/node-*.log | grep -c ':1$') -eq 3 ]] &&
   [[ $(grep -l "controller stopped cleanly" "$dir"/logs/controller-*.log | wc -l) -eq 3 ]] &&
   ! grep -q SIGKILL "$tmp/down.out"; then
  ok "down: every process stopped cleanly on SIGTERM (no SIGKILL needed)"
else
  show_logs; fail "down: not every process stopped cleanly"
fi
rc=0; "$script" status --dir "$dir" --timeout 500 >/dev/null 2>&1 || rc=$?
[[ $rc -eq 3 ]] && ok "status of a stopped cluster: mafalda-ctl exit 3 (unreachable)" || fail "status after down: $rc"

"$script" down --dir "$dir" --purge >/dev/null && [[ ! -e $dir ]] &&
  ok "down --purge (again: idempotent) removes the folder" || fail "down --purge"

if ((failed)); then echo "$failed check(s) failed"; exit 1; fi
echo "all checks passed"
