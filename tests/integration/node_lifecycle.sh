#!/usr/bin/env bash
# Starts the real mafalda-node binary and checks what an operator sees: one "ready" line
# per worker, a clean stop on SIGTERM and SIGINT, clear errors for bad flags.
# Every child runs under `timeout`, and the trap kills whatever is left.
set -euo pipefail
node=${1:?usage: node_lifecycle.sh path/to/mafalda-node}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do pkill -9 -P "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failed=0
check() { # name, command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

# wait_for FILE PATTERN COUNT SECONDS
wait_for() {
  local deadline=$((SECONDS + $4))
  while (( SECONDS < deadline )); do
    if [[ $(grep -c -- "$2" "$1" 2>/dev/null || true) -ge $3 ]]; then return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for $3 x '$2' in $1:" >&2; cat "$1" >&2; return 1
}

# Signals the node itself, not the `timeout` wrapper: timeout forwards a signal to its
# whole process group a second time, which can catch an ASan build inside its exit-time
# leak check and hang it.
signal_node() { # signal, pid of the timeout wrapper
  pkill "-$1" -P "$2"
}

run_and_stop() { # signal, workers, extra flags...
  local sig=$1 workers=$2; shift 2
  local log=$tmp/node-$sig.log
  timeout -s KILL 30 "$node" --workers "$workers" --rtc-port-base 0 --controller=false --api-listen= "$@" 2>"$log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$log" "node ready: $workers workers running" 1 20 || return 1
  [[ $(grep -c "worker [0-9]* ready" "$log") -eq $workers ]] || { cat "$log" >&2; return 1; }
  signal_node "$sig" "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [[ $rc -eq 0 ]] || { echo "exit status $rc" >&2; cat "$log" >&2; return 1; }
  grep -q "received SIG$sig: stopping $workers workers" "$log" &&
    [[ $(grep -c "worker [0-9]* stopped" "$log") -eq $workers ]] &&
    grep -q "node stopped cleanly" "$log"
}

check "SIGTERM stops 2 workers cleanly" run_and_stop TERM 2
check "SIGINT stops 3 workers cleanly" run_and_stop INT 3 --pin-workers=false

json_lines() {
  local log=$tmp/json.log
  MAFALDA_LOG_FORMAT=json MAFALDA_RTC_PORT_BASE=0 MAFALDA_CONTROLLER=false MAFALDA_API_LISTEN= timeout -s KILL 30 "$node" --workers 1 2>"$log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$log" '"node ready: 1 workers running"' 1 20 || return 1
  signal_node TERM "$pid"
  wait "$pid"
  python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 5, lines
for l in lines:
    o = json.loads(l)
    assert {"ts", "level", "module", "msg"} <= set(o), o
' "$log"
}
check "MAFALDA_LOG_FORMAT=json gives one JSON object per line" json_lines

default_workers() {
  local log=$tmp/default.log
  timeout -s KILL 30 "$node" --rtc-port-base 0 --controller=false --api-listen= 2>"$log" &
  local pid=$!
  pids+=("$pid")
  local cores
  cores=$(nproc)
  wait_for "$log" "node ready: $cores workers running" 1 20 || return 1
  signal_node TERM "$pid"
  wait "$pid"
}
check "default is one worker per core" default_workers

# A worker's UDP port that another process holds: start-up fails with exit 1 and says why.
port_in_use() {
  local log=$tmp/inuse.log
  python3 - "$tmp/port" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(20)
PY
  local holder=$!
  pids+=("$holder")
  local deadline=$((SECONDS + 10))
  while [[ ! -s $tmp/port ]] && (( SECONDS < deadline )); do sleep 0.05; done
  local port
  port=$(cat "$tmp/port")
  local rc=0
  timeout -s KILL 30 "$node" --workers 1 --rtc-listen-ip 127.0.0.1 --rtc-port-base "$port" --controller=false --api-listen= \
    2>"$log" || rc=$?
  kill "$holder" 2>/dev/null || true
  [[ $rc -eq 1 ]] && grep -q "cannot open WebRTC port 127.0.0.1:$port: already exists" "$log" ||
    { echo "rc=$rc" >&2; cat "$log" >&2; return 1; }
}
check "a taken WebRTC port fails start-up with exit 1" port_in_use

ready_line_has_port() {
  grep -q "worker 0 ready (.*WebRTC udp 0.0.0.0:[0-9]* announced as " "$tmp/node-TERM.log"
}
check "ready line names the worker's UDP port and announced address" ready_line_has_port

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Two distinct free ports: a probe released at once may give the same port twice.
free_ports2() {
  python3 -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])'
}

# The embedded default: the node is also a single-voter controller with its data on disk.
embedded_controller() { # expected log text
  local log=$tmp/ctl-$2.log raft rpc
  read -r raft rpc < <(free_ports2)
  timeout -s KILL 30 "$node" --workers 1 --rtc-port-base 0 --data-dir "$tmp/data" --api-listen= \
    --controller-listen "127.0.0.1:$raft" --controller-rpc-listen "127.0.0.1:$rpc" --gossip-port 0 --node-rpc-port 0 2>"$log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$log" "node ready: 1 workers running, embedded controller running" 1 20 || return 1
  grep -q -- "$1" "$log" && grep -q "controller 1 ready: raft 127.0.0.1:$raft, rpc 127.0.0.1:$rpc" "$log" ||
    { cat "$log" >&2; return 1; }
  signal_node TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [[ $rc -eq 0 ]] && grep -q "node stopped cleanly" "$log" || { echo "rc=$rc" >&2; cat "$log" >&2; return 1; }
}
check "embedded controller bootstraps a single voter" embedded_controller "bootstrapped with 1 voters" first
check "embedded controller resumes from its data dir" embedded_controller "has state: resuming" second

bad_controller() {
  local rc=0
  timeout 10 "$node" --rtc-port-base 0 --api-listen= --gossip-port 0 --node-rpc-port 0 --controller-id 3 --controller-peers "1@127.0.0.1:1" \
    --data-dir "$tmp/bad" 2>"$tmp/badctl.err" >/dev/null || rc=$?
  [[ $rc -eq 1 ]] && grep -q "embedded controller failed to start: id 3 is not in the peer list" "$tmp/badctl.err"
}
check "a bad controller peer list fails start-up with a clear error" bad_controller

# The public API: /healthz answers on the port given, and a non-loopback address without a
# secret is refused (dev mode is loopback only).
api_up() {
  local log=$tmp/api.log port
  port=$(free_port)
  timeout -s KILL 30 "$node" --workers 1 --rtc-port-base 0 --controller=false \
    --api-listen "127.0.0.1:$port" 2>"$log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$log" "node ready" 1 20 || return 1
  local body
  body=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=5).read().decode())")
  signal_node TERM "$pid"
  wait "$pid" || return 1
  [[ $body == ok* ]] || { echo "healthz said '$body'" >&2; return 1; }
}
check "API serves /healthz on --api-listen" api_up

api_refuses_public_dev_mode() {
  local rc=0
  timeout 10 "$node" --rtc-port-base 0 --controller=false --api-listen 0.0.0.0:0 2>"$tmp/apipub.err" >/dev/null || rc=$?
  [[ $rc -eq 1 ]] && grep -q "API failed to start on 0.0.0.0:0" "$tmp/apipub.err"
}
check "API without a secret refuses a public address" api_refuses_public_dev_mode

# `mafalda-node token` mints an HS256 JWT; verified here independently with Python's hmac.
token_minted() {
  local tok rc=0
  tok=$(timeout 10 "$node" token --api-secret s3cret --room demo --identity alice --ttl 60) || return 1
  python3 - "$tok" <<'PY' || return 1
import base64, hashlib, hmac, json, sys, time
h, p, sig = sys.argv[1].split(".")
pad = lambda s: s + "=" * (-len(s) % 4)
mac = hmac.new(b"s3cret", f"{h}.{p}".encode(), hashlib.sha256).digest()
assert base64.urlsafe_b64decode(pad(sig)) == mac, "bad signature"
assert json.loads(base64.urlsafe_b64decode(pad(h)))["alg"] == "HS256"
c = json.loads(base64.urlsafe_b64decode(pad(p)))
assert c["room"] == "demo" and c["sub"] == "alice" and c["grants"] == ["join"], c
assert 0 < c["exp"] - time.time() <= 61, c
PY
  timeout 10 "$node" token --room demo --identity x 2>"$tmp/tok.err" >/dev/null || rc=$?
  [[ $rc -eq 2 ]] && grep -q "api-secret (or MAFALDA_API_SECRET) is required" "$tmp/tok.err"
}
check "token subcommand mints a verifiable HS256 token" token_minted

bad_ip() {
  local rc=0
  timeout 10 "$node" --announced-ip 300.1.1.1 2>"$tmp/ip.err" >/dev/null || rc=$?
  [[ $rc -eq 2 ]] && grep -q "announced-ip: '300.1.1.1' is not an IPv4 or IPv6 address" "$tmp/ip.err"
}
check "bad --announced-ip exits 2" bad_ip

bad_flag() {
  local rc=0
  timeout 10 "$node" --workers lots 2>"$tmp/bad.err" >/dev/null || rc=$?
  [[ $rc -eq 2 ]] && grep -q "mafalda-node: --workers: 'lots' is not an integer" "$tmp/bad.err"
}
check "bad flag value exits 2 with a clear message" bad_flag

bad_env() {
  local rc=0
  MAFALDA_LOG_LEVEL=chatty timeout 10 "$node" 2>"$tmp/env.err" >/dev/null || rc=$?
  [[ $rc -eq 2 ]] && grep -q "MAFALDA_LOG_LEVEL: 'chatty' is not one of" "$tmp/env.err"
}
check "bad environment value exits 2 naming the variable" bad_env

unknown_flag() {
  local rc=0
  timeout 10 "$node" --frobnicate 2>"$tmp/unk.err" >/dev/null || rc=$?
  [[ $rc -eq 2 ]] && grep -q "unknown option '--frobnicate'" "$tmp/unk.err"
}
check "unknown flag exits 2" unknown_flag

help_text() {
  timeout 10 "$node" --help >"$tmp/help.out" && grep -q -- "--workers N  \[MAFALDA_WORKERS\]" "$tmp/help.out"
}
check "--help lists flags with their environment names" help_text

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
