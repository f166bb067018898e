#!/usr/bin/env bash
# Control-plane TLS end to end (issue 12): a CA and certificates made with `openssl req` /
# `openssl x509` in a temp dir; startup errors (missing file, mismatched key, --tls-require
# without files or with a tcp:// address) exit 2 with a clear message; a controller and a
# node with --tls-require: the node registers over tls+tcp:// (mafalda-ctl with TLS sees it
# active). Refused: a plain-TCP mafalda-ctl; one whose certificate another CA signed (the
# controller logs the refused handshakes, the client the address that refused it); one
# that trusts only that other CA (it refuses the controller in the handshake); a node with
# a foreign certificate (it never registers and still stops cleanly). SIGTERM stops the
# controller and the node cleanly. Every child runs under `timeout`; the trap kills
# whatever is left.
# Usage: control_tls.sh mafalda-controller mafalda-node mafalda-ctl
# shellcheck disable=SC2015 # ok() never fails: `check && ok || fail` is if/else here
set -euo pipefail
controller=${1:?usage: control_tls.sh mafalda-controller mafalda-node mafalda-ctl}
node=${2:?}
ctl=${3:?}
# The binaries read MAFALDA_* from the environment: none may leak in from the caller's.
for v in $(env | sed -n 's/^\(MAFALDA_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

tmp=$(mktemp -d /tmp/mf-control-tls-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" INT TERM

failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

free_ports() { # N distinct free ports on 127.0.0.1
  python3 -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

wait_for() { # file pattern seconds
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1:" >&2
  tail -n 20 "$1" >&2
  return 1
}

# --- certificates, the way docs/controller.md tells operators to make them
pki=$tmp/pki
mkdir -p "$pki"
cat >"$pki/member.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1
EOF
make_ca() { # name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.pem" 2>/dev/null
}
make_member() { # name ca
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" \
    -CAcreateserial -days 2 -extfile "$pki/member.ext" -out "$pki/$1.pem" 2>/dev/null
}
make_ca cluster-ca
make_ca other-ca
make_member controller-1 cluster-ca
make_member node-1 cluster-ca
make_member operator cluster-ca
make_member intruder other-ca
cat "$pki/cluster-ca.pem" "$pki/other-ca.pem" >"$pki/both-ca.pem"
tls() { # member [ca]: the three flags
  echo "--tls-cert $pki/$1.pem --tls-key $pki/$1.key --tls-ca $pki/${2:-cluster-ca}.pem"
}

# --- startup errors: exit 2, a message naming the file or option
exits_with() { # status, expected stderr text, command...
  local want=$1 text=$2
  shift 2
  local rc=0
  timeout -s KILL 20 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
  [[ $rc -eq $want ]] || { echo "exit $rc, want $want" >&2; cat "$tmp/err" >&2; return 1; }
  grep -q -- "$text" "$tmp/err" || { echo "no '$text' in:" >&2; cat "$tmp/err" >&2; return 1; }
}
read -r p1 p2 < <(free_ports 2)
cbase=(--listen "127.0.0.1:$p1" --rpc-listen "127.0.0.1:$p2" --data-dir "$tmp/bad")
exits_with 2 "$pki/missing.key: cannot read" "$controller" "${cbase[@]}" \
  --tls-cert "$pki/controller-1.pem" --tls-key "$pki/missing.key" --tls-ca "$pki/cluster-ca.pem" &&
  ok "controller: missing key file -> exit 2, file named" || fail "controller: missing key file"
# shellcheck disable=SC2046
exits_with 2 "does not match the certificate" "$controller" "${cbase[@]}" \
  --tls-cert "$pki/controller-1.pem" --tls-key "$pki/node-1.key" --tls-ca "$pki/cluster-ca.pem" &&
  ok "controller: key of another certificate -> exit 2" || fail "controller: mismatched key"
# shellcheck disable=SC2046
exits_with 2 "is not valid for --tls-ca" "$controller" "${cbase[@]}" $(tls intruder) &&
  ok "controller: certificate from another CA -> exit 2" || fail "controller: foreign cert"
exits_with 2 "tls-require needs" "$controller" "${cbase[@]}" --tls-require &&
  ok "controller: --tls-require without files -> exit 2" || fail "controller: --tls-require"
exits_with 2 "--tls-ca is missing" "$node" --workers 1 --controller=false \
  --tls-cert "$pki/node-1.pem" --tls-key "$pki/node-1.key" &&
  ok "node: --tls-ca missing -> exit 2" || fail "node: --tls-ca missing"
# shellcheck disable=SC2046
exits_with 2 "plain tcp:// refused" "$node" --workers 1 --controller=false \
  --controllers "tcp://127.0.0.1:$p2" --tls-require $(tls node-1) &&
  ok "node: --tls-require with a tcp:// controller -> exit 2" || fail "node: tcp:// address"
# shellcheck disable=SC2046
exits_with 2 "plain tcp:// refused" "$ctl" --controller "tcp://127.0.0.1:$p2" --tls-require \
  $(tls operator) status &&
  ok "ctl: --tls-require with a tcp:// controller -> exit 2" || fail "ctl: tcp:// address"
[[ ! -e $tmp/bad ]] && ok "nothing was created by the refused starts" ||
  fail "a refused start created its data dir"

# --- a controller and a node with --tls-require
read -r raft rpc nrpc gossip api rtc < <(free_ports 6)
# shellcheck disable=SC2046
timeout -s KILL 100 "$controller" --id 1 --listen "127.0.0.1:$raft" --rpc-listen "127.0.0.1:$rpc" \
  --data-dir "$tmp/controller" --tls-require $(tls controller-1) >"$tmp/controller.log" 2>&1 &
cpid=$!
pids+=("$cpid")
wait_for "$tmp/controller.log" "listening on tls+tcp://127.0.0.1:$rpc with mutual TLS" 20 &&
  ok "controller RPC listens on tls+tcp://" || fail "controller did not start with TLS"

# shellcheck disable=SC2046
timeout -s KILL 100 "$node" --workers 1 --pin-workers=false --controller=false \
  --controllers "127.0.0.1:$rpc" --rtc-listen-ip 127.0.0.1 --announced-ip 127.0.0.1 \
  --rtc-port-base "$rtc" --gossip-port "$gossip" --node-rpc-port "$nrpc" \
  --api-listen "127.0.0.1:$api" --tls-require $(tls node-1) >"$tmp/node.log" 2>&1 &
npid=$!
pids+=("$npid")
wait_for "$tmp/node.log" "listening on tls+tcp://127.0.0.1:$nrpc with mutual TLS" 20 &&
  ok "node RPC listens on tls+tcp://" || fail "node RPC is not TLS"

# mafalda-ctl over TLS sees the node active.
ctl_tls() { # member [ca] -- args
  local member=$1 ca=${2:-cluster-ca}
  shift 2
  # shellcheck disable=SC2046
  timeout -s KILL 30 "$ctl" --controller "127.0.0.1:$rpc" $(tls "$member" "$ca") "$@"
}
active=no
for _ in $(seq 100); do
  if ctl_tls operator cluster-ca --json --timeout 2000 nodes 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin)
sys.exit(0 if any(n["state"] == "active" and n["rpc_address"].endswith(":" + sys.argv[1])
                  for n in nodes) else 1)' "$nrpc"; then
    active=yes
    break
  fi
  sleep 0.2
done
[[ $active == yes ]] && ok "the node registered over TLS: active in mafalda-ctl nodes" ||
  { tail -n 20 "$tmp/node.log"; fail "node not active"; }
out=$(ctl_tls operator cluster-ca --timeout 5000 status 2>&1) &&
  grep -q "Nodes: 1 (1 active)" <<<"$out" &&
  ok "mafalda-ctl status over TLS: 1 active node" || { echo "$out"; fail "ctl status over TLS"; }
out=$(MAFALDA_TLS_CERT=$pki/operator.pem MAFALDA_TLS_KEY=$pki/operator.key \
  MAFALDA_TLS_CA=$pki/cluster-ca.pem timeout -s KILL 30 "$ctl" --controller "127.0.0.1:$rpc" \
  --timeout 5000 nodes 2>&1) && grep -q active <<<"$out" &&
  ok "the TLS options also come from MAFALDA_TLS_* variables" || { echo "$out"; fail "env"; }
grep -q "controller call .* failed" "$tmp/node.log" &&
  fail "the node logged failed controller calls" || ok "no failed controller call in the node log"

# --- refused clients
rc=0
timeout -s KILL 30 "$ctl" --controller "127.0.0.1:$rpc" --timeout 1500 status \
  >"$tmp/plain.out" 2>&1 || rc=$?
[[ $rc -eq 3 ]] && grep -q "needs them here too" "$tmp/plain.out" &&
  ok "plain-TCP mafalda-ctl refused (exit 3, TLS hint)" ||
  { cat "$tmp/plain.out"; fail "plain ctl: exit $rc"; }

rc=0
ctl_tls intruder both-ca --timeout 1500 nodes >"$tmp/intruder.out" 2>&1 || rc=$?
refused_by="TLS handshake with tls+tcp://127.0.0.1:$rpc failed"
[[ $rc -eq 3 ]] && grep -q "$refused_by" "$tmp/intruder.out" &&
  ok "mafalda-ctl with another CA's certificate refused (exit 3, controller address logged)" ||
  { cat "$tmp/intruder.out"; fail "intruder ctl: exit $rc"; }
refusals="controller rpc on tls+tcp://127.0.0.1:$rpc: refused [0-9]* connections\? in the TLS"
wait_for "$tmp/controller.log" "$refusals" 10 &&
  ok "the controller logged the refused handshakes" || fail "refusal not logged"

rc=0
ctl_tls intruder other-ca --timeout 1500 nodes >"$tmp/untrusted.out" 2>&1 || rc=$?
[[ $rc -eq 3 ]] && grep -q "TLS handshake" "$tmp/untrusted.out" &&
  ok "mafalda-ctl that does not trust the controller's CA refuses it (TLS handshake)" ||
  { cat "$tmp/untrusted.out"; fail "untrusting ctl: exit $rc"; }

# A node whose certificate another CA signed is refused by the controller: it logs the
# address, never registers, and still stops cleanly.
read -r nrpc2 gossip2 api2 rtc2 < <(free_ports 4)
# shellcheck disable=SC2046
timeout -s KILL 60 "$node" --workers 1 --pin-workers=false --controller=false \
  --controllers "127.0.0.1:$rpc" --rtc-listen-ip 127.0.0.1 --announced-ip 127.0.0.1 \
  --rtc-port-base "$rtc2" --gossip-port "$gossip2" --node-rpc-port "$nrpc2" \
  --api-listen "127.0.0.1:$api2" $(tls intruder both-ca) >"$tmp/node2.log" 2>&1 &
n2pid=$!
pids+=("$n2pid")
wait_for "$tmp/node2.log" "$refused_by" 20 &&
  ok "a node with another CA's certificate is refused (it logs the controller's address)" ||
  fail "foreign node not refused"
out=$(ctl_tls operator cluster-ca --json --timeout 5000 nodes 2>&1)
python3 -c 'import json, sys; sys.exit(0 if len(json.loads(sys.argv[1])) == 1 else 1)' "$out" &&
  ok "the foreign node never registered" || { echo "$out"; fail "foreign node registered"; }
kill -TERM "$n2pid"
rc=0
wait "$n2pid" || rc=$?
[[ $rc -eq 0 ]] && ok "the refused node stops cleanly (exit 0)" ||
  { tail -n 20 "$tmp/node2.log"; fail "refused node exit $rc"; }

kill -0 "$cpid" && kill -0 "$npid" && ok "controller and node still run" ||
  fail "a process died"
out=$(ctl_tls operator cluster-ca --timeout 5000 nodes 2>&1) && grep -q active <<<"$out" &&
  ok "members are still served after the refusals" || { echo "$out"; fail "after refusals"; }

# --- clean stop
stop() { # pid log name
  kill -TERM "$1"
  local rc=0
  wait "$1" || rc=$?
  [[ $rc -eq 0 ]] && ok "$3 stopped cleanly (exit 0)" || { tail -n 20 "$2"; fail "$3 exit $rc"; }
}
# The controller first, while the node's agent still calls it over TLS: neither may hang.
stop "$cpid" "$tmp/controller.log" controller
stop "$npid" "$tmp/node.log" node

echo "control_tls: $failed failed"
((failed == 0))
