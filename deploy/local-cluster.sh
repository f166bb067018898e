#!/usr/bin/env bash
# A local Mafalda cluster as plain processes: 3 mafalda-controller replicas and N mafalda-node
# processes, each on its own loopback address, joined the way docker-compose.yml joins
# them (static controller peers, nodes through gossip + --controllers). It is the compose
# topology without Docker, so it can run (and be tested) where no Docker engine exists.
#
#   deploy/local-cluster.sh up [--nodes N] [--workers W] [--dir DIR] [--wait S]
#       start a FRESH cluster (a stopped one's data and logs in DIR are erased), wait up
#       to S s (default 30, 0 = no wait) for a leader and every node active
#   deploy/local-cluster.sh add-node [--dir DIR] [--workers W] [--no-wait]
#       start node N+1 (scaling out), wait until it is active and print how long it took
#   deploy/local-cluster.sh status [--dir DIR] [mafalda-ctl flags, e.g. --json]
#       the processes (not with --json), then `mafalda-ctl status`; its exit status
#   deploy/local-cluster.sh ctl [--dir DIR] COMMAND...     (any mafalda-ctl command)
#   deploy/local-cluster.sh down [--dir DIR] [--stop-timeout S] [--purge]
#       SIGTERM the nodes (they drain and leave), then the controllers; SIGKILL what
#       still runs after S s (default 10); --purge then removes DIR
#
# Addresses (127.0.0.0/8 is all loopback on Linux, no setup needed):
#   controller K (1..3)  127.0.0.(10+K)  Raft 7100, RPC 7200, gossip 7946
#   node K (1..234)      127.0.0.(20+K)  API 8080, node RPC 7002, gossip 7946,
#                                        RTC UDP 40000 + worker (W workers, default 1)
# Those are the preferred ports; a port already taken on that address (or on the wildcard
# address) is skipped for the next free one. Everything lives under DIR (default
# ./mafalda-local): cluster.env (addresses), nodes/node-K.env, logs/NAME.log,
# pids/NAME.pid (pid and start time, so a recycled pid is never signalled),
# data/controller-K (Raft state).
#
# Environment:
#   MAFALDA_BIN_DIR         build tree or folder with the binaries (default build/release,
#                           then PATH)
#   MAFALDA_NODE_BIN, MAFALDA_CONTROLLER_BIN, MAFALDA_CTL_BIN   one binary each (win)
#   MAFALDA_LOCAL_DEADLINE  seconds: run every child under `timeout -s KILL` (tests only;
#                           unset, the cluster runs until `down`)
#   MAFALDA_NODE_ARGS       extra mafalda-node flags (word-split), e.g. "--log-level debug"
#   Any other MAFALDA_<FLAG> variable reaches the binaries as usual (common/config.h).
#
# Exit status: 0 done, 1 failed (the reason and the log tails on stderr), 2 usage error.
set -euo pipefail

prog=$(basename "$0")
script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

CONTROLLERS=3
CTL_IP_BASE=10 # controller K at 127.0.0.(10+K)
NODE_IP_BASE=20 # node K at 127.0.0.(20+K)
MAX_NODES=$((254 - NODE_IP_BASE))
MARKER=".mafalda-local-cluster"

die() { echo "$prog: $*" >&2; exit 1; }
usage_error() { echo "$prog: $*" >&2; echo "run '$prog --help' for usage" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# ---- binaries ----

find_bin() { # name, explicit path (may be empty)
  local name=$1 explicit=$2 bin_dir=${MAFALDA_BIN_DIR:-$repo/build/release} d
  if [[ -n $explicit ]]; then
    [[ -x $explicit ]] || die "$explicit: not an executable"
    echo "$explicit"; return
  fi
  for d in "$bin_dir" "$bin_dir/node" "$bin_dir/controller" "$bin_dir/controller/ctl" \
           "$bin_dir/bin"; do
    [[ -x $d/$name ]] && { realpath -- "$d/$name"; return; }
  done
  command -v "$name" && return # installed ones, e.g. /usr/local/bin
  die "$name not found under $bin_dir nor in PATH (build it with 'make release', or set MAFALDA_BIN_DIR)"
}

load_bins() {
  NODE_BIN=$(find_bin mafalda-node "${MAFALDA_NODE_BIN:-}")
  CONTROLLER_BIN=$(find_bin mafalda-controller "${MAFALDA_CONTROLLER_BIN:-}")
  CTL_BIN=$(find_bin mafalda-ctl "${MAFALDA_CTL_BIN:-}")
}

# ---- ports ----

# Ports bound on IP, or on a wildcard address (which would make our bind fail), by proto.
taken_ports() { # ip, t|u
  ss -Han"$2" 2>/dev/null | awk -v ip="$1" '{
    n = split($4, a, ":"); port = a[n]; host = substr($4, 1, length($4) - length(port) - 1)
    if (host == ip || host == "0.0.0.0" || host == "*" || host == "[::]" || host == "[::ffff:" ip "]")
      print port }' | sort -u
}

declare -A reserved=() # ip:port/proto chosen by this run, not bound yet

# Sets PORT to the first port >= preferred whose `count` consecutive ports are free on ip
# for proto (not in a $(...) subshell: `reserved` must remember the choice).
pick_port() { # ip, preferred, t|u, [count]
  local ip=$1 port=$2 proto=$3 count=${4:-1} taken k ok
  command -v ss >/dev/null || die "ss (iproute2) is needed to probe free ports"
  taken=" $(taken_ports "$ip" "$proto" | tr '\n' ' ') "
  for ((; port + count - 1 <= 65535; port++)); do
    ok=1
    for ((k = 0; k < count; k++)); do
      if [[ $taken == *" $((port + k)) "* || -n ${reserved[$ip:$((port + k))/$proto]:-} ]]; then
        ok=0; break
      fi
    done
    if ((ok)); then
      for ((k = 0; k < count; k++)); do reserved[$ip:$((port + k))/$proto]=1; done
      PORT=$port; return
    fi
  done
  die "no free $proto port on $ip from $2"
}

# ---- processes ----

start_time_of() { # pid -> field 22 of /proc/pid/stat (clock ticks since boot), or ""
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) } # the command name may hold spaces and parentheses
  local -a fields
  read -r -a fields <<<"$stat"
  echo "${fields[19]}"
}

state_of() { # pid -> one-letter state (R, S, Z, ...) or ""
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  echo "${stat%% *}"
}

# A pid file holds "pid start_time [wrapper_pid wrapper_start_time]".
alive() { # pid, start_time: the same process still runs (a zombie does not count)
  [[ -n $1 && $(start_time_of "$1") == "$2" ]] || return 1
  [[ $(state_of "$1") != Z ]]
}

pid_alive() { # name
  local f=$DIR/pids/$1.pid pid st
  [[ -f $f ]] || return 1
  read -r pid st _ <"$f"
  alive "$pid" "$st"
}

# Starts a child detached from this shell (own session: Ctrl-C here never reaches it),
# logs to logs/NAME.log, records pids/NAME.pid.
spawn() { # name, argv...
  local name=$1; shift
  local log=$DIR/logs/$name.log wrapper="" pid k
  mkdir -p "$DIR/logs" "$DIR/pids"
  echo "=== $(date -Is) $*" >>"$log"
  if [[ -n ${MAFALDA_LOCAL_DEADLINE:-} ]]; then
    setsid timeout -s KILL "$MAFALDA_LOCAL_DEADLINE" "$@" </dev/null >>"$log" 2>&1 &
    wrapper=$!
    pid=""
    for ((k = 0; k < 100; k++)); do
      pid=$(pgrep -P "$wrapper" | head -n 1 || true)
      [[ -z $pid ]] || break
      sleep 0.02
    done
    [[ -n $pid ]] || die "$name: no process under timeout ($wrapper)"
    echo "$pid $(start_time_of "$pid") $wrapper $(start_time_of "$wrapper")" >"$DIR/pids/$name.pid"
  else
    setsid "$@" </dev/null >>"$log" 2>&1 &
    pid=$!
    echo "$pid $(start_time_of "$pid")" >"$DIR/pids/$name.pid"
  fi
}

log_tail() { # name
  echo "--- $DIR/logs/$1.log (last lines)" >&2
  tail -n 15 "$DIR/logs/$1.log" >&2 2>/dev/null || true
}

# ---- the cluster's layout ----

ctl_ip() { echo "127.0.0.$((CTL_IP_BASE + $1))"; }
node_ip() { echo "127.0.0.$((NODE_IP_BASE + $1))"; }

node_names() { # existing node-K names, by K
  local f
  for f in "$DIR"/nodes/node-*.env; do
    [[ -e $f ]] || continue
    basename "$f" .env
  done | sort -t- -k2 -n
}

node_env() { # name, key: one value of nodes/NAME.env
  sed -n "s/^$2=//p" "$DIR/nodes/$1.env"
}

ctl() { "$CTL_BIN" --controller "$CONTROLLER_RPC" "$@"; }

# The state of the node announcing ip per `mafalda-ctl nodes` ("" if absent).
node_state() { # ip
  ctl --timeout 1000 --json nodes 2>/dev/null | tr -d ' \n' |
    grep -o "{[^{}]*\"announced_ip\":\"$1\"[^{}]*" |
    grep -o '"state":"[a-z]*"' | head -n 1 | cut -d'"' -f4 || true
}

wait_leader() { # seconds
  local t0 limit=$1
  t0=$(now)
  while true; do
    ctl --timeout 1000 status >/dev/null 2>&1 && return 0
    check_running controller || return 1
    awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && return 1
    sleep 0.2
  done
}

wait_active() { # name, seconds
  local name=$1 limit=$2 ip t0
  ip=$(node_env "$name" IP)
  t0=$(now)
  while [[ $(node_state "$ip") != active ]]; do
    pid_alive "$name" || { echo "$prog: $name exited" >&2; log_tail "$name"; return 1; }
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      echo "$prog: $name ($ip) not active after ${limit} s" >&2; log_tail "$name"; return 1
    fi
    sleep 0.1
  done
}

check_running() { # role prefix: every process of it still runs
  local f name ok=0
  for f in "$DIR"/pids/"$1"*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    pid_alive "$name" || { echo "$prog: $name exited" >&2; log_tail "$name"; ok=1; }
  done
  return $ok
}

start_controllers() {
  local k ip raft rpc gossip peers="" rpcs="" gossips=""
  local -a raft_addr rpc_addr gossip_addr
  for ((k = 1; k <= CONTROLLERS; k++)); do
    ip=$(ctl_ip $k)
    pick_port "$ip" 7100 t; raft=$PORT
    pick_port "$ip" 7200 t; rpc=$PORT
    pick_port "$ip" 7946 u; gossip=$PORT
    raft_addr[k]=$ip:$raft; rpc_addr[k]=$ip:$rpc; gossip_addr[k]=$ip:$gossip
    peers+="${peers:+,}$k@$ip:$raft/$ip:$rpc"
    rpcs+="${rpcs:+,}$ip:$rpc"
    gossips+="${gossips:+,}$ip:$gossip"
  done
  cat >"$DIR/cluster.env" <<EOF
# written by $prog up; read by its other commands
CONTROLLER_PEERS=$peers
CONTROLLER_RPC=$rpcs
CONTROLLER_GOSSIP=$gossips
WORKERS=$WORKERS
EOF
  for ((k = 1; k <= CONTROLLERS; k++)); do
    mkdir -p "$DIR/data/controller-$k"
    # Each replica joins the gossip of the others: whichever leads sees every node.
    local others
    others=$(tr ',' '\n' <<<"$gossips" | grep -vx "${gossip_addr[k]}" | paste -sd, -)
    spawn "controller-$k" "$CONTROLLER_BIN" --id "$k" --listen "${raft_addr[k]}" \
      --rpc-listen "${rpc_addr[k]}" --peers "$peers" --data-dir "$DIR/data/controller-$k" \
      --gossip-listen "${gossip_addr[k]}" --gossip-join "$others"
  done
  CONTROLLER_RPC=$rpcs
  CONTROLLER_GOSSIP=$gossips
}

start_node() { # index
  local k=$1 ip api rpc gossip rtc name=node-$1 web=()
  ((k <= MAX_NODES)) || die "at most $MAX_NODES nodes (addresses up to 127.0.0.254)"
  ip=$(node_ip "$k")
  pick_port "$ip" 8080 t; api=$PORT
  pick_port "$ip" 7002 t; rpc=$PORT
  pick_port "$ip" 7946 u; gossip=$PORT
  pick_port "$ip" 40000 u "$WORKERS"; rtc=$PORT
  mkdir -p "$DIR/nodes"
  cat >"$DIR/nodes/$name.env" <<EOF
IP=$ip
API=$ip:$api
NODE_RPC=$ip:$rpc
GOSSIP=$ip:$gossip
RTC_PORTS=$rtc-$((rtc + WORKERS - 1))
STARTED=$(now)
EOF
  [[ -f $repo/node/web/index.html ]] && web=(--web-dir "$repo/node/web")
  # --pin-workers=false: several nodes share this machine's cores; pinning would stack
  # every node's worker 0 on core 0. A short drain keeps `down` quick when clients linger.
  # shellcheck disable=SC2086
  spawn "$name" "$NODE_BIN" --workers "$WORKERS" --pin-workers=false \
    --rtc-listen-ip "$ip" --announced-ip "$ip" --rtc-port-base "$rtc" \
    --controller=false --controllers "$CONTROLLER_RPC" --join "$CONTROLLER_GOSSIP" \
    --gossip-port "$gossip" --node-rpc-port "$rpc" --api-listen "$ip:$api" \
    --drain-timeout-ms 3000 "${web[@]}" ${MAFALDA_NODE_ARGS:-}
  local ports=$rtc
  ((WORKERS == 1)) || ports+="-$((rtc + WORKERS - 1))"
  echo "$name: $ip, API http://$ip:$api, RTC UDP $ports, pid $(cut -d' ' -f1 "$DIR/pids/$name.pid")"
}

load_env() {
  [[ -f $DIR/cluster.env ]] || die "no cluster in $DIR (run '$prog up --dir $DIR' first)"
  # shellcheck disable=SC1091
  . "$DIR/cluster.env"
}

any_running() {
  local f
  for f in "$DIR"/pids/*.pid; do
    [[ -e $f ]] || continue
    pid_alive "$(basename "$f" .pid)" && return 0
  done
  return 1
}

# ---- commands ----

cmd_up() {
  load_bins
  if [[ -d $DIR ]]; then
    if [[ -f $DIR/$MARKER ]]; then
      any_running && die "a cluster already runs in $DIR ('$prog status' / '$prog down')"
      # A fresh cluster each time: old Raft state would name the previous run's ports.
      rm -rf "${DIR:?}/data" "$DIR/logs" "$DIR/pids" "$DIR/nodes" "$DIR/cluster.env"
    elif [[ -n $(ls -A "$DIR") ]]; then
      die "$DIR exists and is not a local cluster folder (choose another --dir)"
    fi
  fi
  mkdir -p "$DIR"
  touch "$DIR/$MARKER"
  local t0 k
  t0=$(now)
  start_controllers
  echo "controllers: RPC $CONTROLLER_RPC, gossip $CONTROLLER_GOSSIP"
  if ((WAIT > 0)) && ! wait_leader "$WAIT"; then
    echo "$prog: no controller leader after $WAIT s" >&2
    for ((k = 1; k <= CONTROLLERS; k++)); do log_tail "controller-$k"; done
    stop_all 5 >/dev/null; exit 1
  fi
  for ((k = 1; k <= NODES; k++)); do start_node "$k"; done
  if ((WAIT > 0)); then
    for ((k = 1; k <= NODES; k++)); do
      wait_active "node-$k" "$WAIT" || { stop_all 5 >/dev/null; exit 1; }
    done
    echo "cluster up in $(elapsed "$t0") s: $CONTROLLERS controllers (leader elected), $NODES nodes active"
  fi
  echo "logs: $DIR/logs"
  echo "try:  export MAFALDA_CONTROLLER=$CONTROLLER_RPC; mafalda-ctl status"
  ((NODES == 0)) || echo "demo: http://$(node_env node-1 API)/app/?room=demo"
}

cmd_add_node() {
  load_bins
  load_env
  WORKERS=${WORKERS_GIVEN:-$WORKERS} # default: what `up` was given
  check_running controller || die "the controllers of $DIR do not all run (see above)"
  local last k
  last=$(node_names | tail -n 1)
  k=$(( ${last:+${last#node-}} + 1 ))
  start_node "$k"
  if ((WAIT > 0)); then
    wait_active "node-$k" "$WAIT" || exit 1
    echo "node-$k active $(elapsed "$(node_env "node-$k" STARTED)") s after its start"
  fi
}

cmd_status() {
  load_bins
  load_env
  local json=0 a name f state
  for a in "$@"; do [[ $a == --json ]] && json=1; done
  if ((json == 0)); then
    echo "Local cluster $DIR"
    for f in "$DIR"/pids/*.pid; do
      [[ -e $f ]] || continue
      name=$(basename "$f" .pid)
      state="stopped"
      pid_alive "$name" && state="running (pid $(cut -d' ' -f1 "$f"))"
      printf '  %-14s %s\n' "$name" "$state"
    done
    echo
  fi
  ctl "$@" status
}

cmd_ctl() {
  load_bins
  load_env
  ctl "$@"
}

# SIGTERM the named processes, wait up to `limit` s, then SIGKILL what is left (and the
# timeout wrappers). Prints one line per process; returns 1 if one survived SIGKILL.
stop_group() { # limit, names...
  local limit=$1; shift
  local name f pid st wpid wst t0 left
  local -a names=()
  for name in "$@"; do
    f=$DIR/pids/$name.pid
    read -r pid st _ <"$f"
    alive "$pid" "$st" || continue
    kill -TERM "$pid" 2>/dev/null || true
    names+=("$name")
  done
  ((${#names[@]})) || return 0
  t0=$(now)
  while true; do
    left=()
    for name in "${names[@]}"; do pid_alive "$name" && left+=("$name"); done
    ((${#left[@]})) || break
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      for name in "${left[@]}"; do
        read -r pid st wpid wst <"$DIR/pids/$name.pid"
        echo "$name: still running after ${limit} s, SIGKILL"
        if alive "$pid" "$st"; then kill -KILL "$pid" 2>/dev/null || true; fi
      done
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  local rc=0
  for name in "${names[@]}"; do
    read -r pid st wpid wst <"$DIR/pids/$name.pid"
    if [[ -n ${wpid:-} ]] && alive "$wpid" "$wst"; then kill -KILL "$wpid" 2>/dev/null || true; fi
    if pid_alive "$name"; then echo "$name: pid $pid survived SIGKILL" >&2; rc=1
    else echo "$name: stopped"; fi
  done
  return $rc
}

stop_all() { # limit
  local f rc=0
  local -a nodes=() ctls=()
  for f in "$DIR"/pids/node-*.pid; do [[ -e $f ]] && nodes+=("$(basename "$f" .pid)"); done
  for f in "$DIR"/pids/controller-*.pid; do [[ -e $f ]] && ctls+=("$(basename "$f" .pid)"); done
  # Nodes first: they drain and leave while the controllers can still record it.
  stop_group "$1" "${nodes[@]}" || rc=1
  stop_group "$1" "${ctls[@]}" || rc=1
  return $rc
}

cmd_down() {
  if [[ ! -d $DIR ]]; then echo "no cluster in $DIR"; return 0; fi
  [[ -f $DIR/$MARKER ]] || die "$DIR is not a local cluster folder"
  stop_all "$STOP_TIMEOUT" || die "some processes could not be stopped"
  if ((PURGE)); then
    rm -rf "${DIR:?}"
    echo "removed $DIR"
  else
    echo "logs kept in $DIR/logs ('$prog down --purge' removes $DIR)"
  fi
}

# ---- arguments ----

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd=$1; shift
case $cmd in
  -h|--help|help) usage; exit 0 ;;
  up|down|status|add-node|ctl) ;;
  *) usage_error "unknown command '$cmd'" ;;
esac

DIR=./mafalda-local
NODES=2
WORKERS=1
WORKERS_GIVEN=""
WAIT=30
STOP_TIMEOUT=10
PURGE=0
passthrough=()
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --dir) [[ $# -ge 2 ]] || usage_error "--dir needs a value"; DIR=$2; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    --nodes|--workers|--wait|--stop-timeout)
      [[ $cmd == up || $cmd == add-node || $cmd == down ]] || usage_error "$1 is not a $cmd option"
      if [[ $# -lt 2 ]] || ! is_count "$2"; then usage_error "$1 needs a number"; fi
      case $1 in
        --nodes) NODES=$2 ;; --workers) WORKERS=$2; WORKERS_GIVEN=$2 ;; --wait) WAIT=$2 ;; --stop-timeout) STOP_TIMEOUT=$2 ;;
      esac
      shift 2 ;;
    --no-wait) WAIT=0; shift ;;
    --purge) [[ $cmd == down ]] || usage_error "--purge is a down option"; PURGE=1; shift ;;
    *)
      [[ $cmd == status || $cmd == ctl ]] || usage_error "unknown argument '$1' for $cmd"
      passthrough+=("$1"); shift ;;
  esac
done
((NODES <= MAX_NODES)) || usage_error "--nodes: at most $MAX_NODES"
((WORKERS >= 1 && WORKERS <= 64)) || usage_error "--workers: 1..64"
[[ -n $DIR ]] || usage_error "--dir is empty"
DIR=$(realpath -m -- "$DIR")

case $cmd in
  up) cmd_up ;;
  add-node) cmd_add_node ;;
  status) cmd_status "${passthrough[@]}" ;;
  ctl) cmd_ctl "${passthrough[@]}" ;;
  down) cmd_down ;;
esac
