#!/usr/bin/env bash
# A Skiff deployment of several hosts on this machine: N API processes (`skiff serve --no-agent`)
# and M agents (`skiff agent`), each its own "host": its own data dir and, when run as root with
# `ip`, its own network namespace, all on one PostgreSQL. What an operator does on real hosts,
# the script does here: the first API process bootstraps the database; every other host gets the
# deployment's sealing key (secret.key) and the known passwords (.credentials.json) copied from
# the first data dir, nothing else; each API process then writes client files that name itself.
#
#   scripts/deployment.sh up [--dir DIR] [--apis N] [--agents M] [--database-url URL]
#                            [--netns auto|on|off] [--subnet 10.213] [--name skiff]
#                            [--skiff CMD] [--api-args ARGS] [--agent-args ARGS]
#   scripts/deployment.sh start DIR HOST     start (again) one host's process: api1..apiN, hv1..hvM
#   scripts/deployment.sh stop DIR HOST      SIGTERM it (SIGKILL after 15 s) and wait
#   scripts/deployment.sh skiff DIR HOST ARGS...   `skiff ARGS` on that host: its namespace, data dir, database URL
#   scripts/deployment.sh down DIR [--purge] stop everything, remove the namespaces (--purge: and DIR)
#
# Network namespaces: host k (apis first, then agents) is namespace NAME-HOST with a veth pair,
# SUBNET.k.1 on this machine's side and SUBNET.k.2 inside. An API process listens on SUBNET.k.2
# (ports 5000, 8774, 9292: each namespace has its own). PostgreSQL usually listens on this
# machine's loopback, which a namespace cannot reach (127.0.0.1 there is its own), so a small
# forwarder (scripts/tcp-forward.js) listens on SUBNET.k.1:PORT of every host and connects to
# the database's address; each process is given that address. Without root or `ip` (or with
# --netns off) every process runs in this namespace on 127.0.0.1 with ports of its own; the data
# dirs stay separate either way.
#
# --skiff is how `skiff` is run (default: node bin/skiff.js, the build of `npm run build`; the
# tests give the sources through tsx). --api-args and --agent-args are added to every `serve`
# or `agent` (split on spaces).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Seconds a process may take to say it is ready (a start takes seconds; a machine at load 30, minutes).
READY_TIMEOUT=${DEPLOYMENT_READY_TIMEOUT:-150}

die() {
  echo "deployment: $*" >&2
  exit 1
}

# --- small helpers -----------------------------------------------------------------------------

hosts_of() { cat "$1/hosts"; }
ns_of() { cat "$1/$2/netns" 2>/dev/null || true; }

# In the host's namespace (if any), from the repository root.
in_host() {
  local dir=$1 host=$2 ns
  shift 2
  ns=$(ns_of "$dir" "$host")
  cd "$ROOT"
  if [ -n "$ns" ]; then exec ip netns exec "$ns" "$@"; else exec "$@"; fi
}

# A zombie (an orphan not reaped yet) is no longer alive.
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
pid_of() { cat "$1/$2/pid" 2>/dev/null || true; }

# Start one host's process from its recorded command; wait until it says it is ready.
start_host() {
  local dir=$1 host=$2 pid log offset pattern
  pid=$(pid_of "$dir" "$host")
  alive "$pid" && die "$host is running already (pid $pid)"
  log="$dir/$host/log"
  touch "$log"
  chmod 600 "$log"
  offset=$(($(wc -c <"$log") + 1))
  # The command is kept shell-quoted (printf %q) in $dir/$host/cmd.
  (in_host "$dir" "$host" bash -c "exec $(cat "$dir/$host/cmd")") >>"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/$host/pid"
  case $host in
  api*) pattern='^(Try: |Passwords not known)' ;;
  *) pattern='is running\.' ;;
  esac
  local deadline=$((SECONDS + READY_TIMEOUT))
  until tail -c +"$offset" "$log" | grep -Eq "$pattern"; do
    if ! alive "$pid"; then
      echo "deployment: $host exited before it was ready; its output:" >&2
      tail -c +"$offset" "$log" | tail -n 20 >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "deployment: $host not ready after ${READY_TIMEOUT} s; its output:" >&2
      tail -c +"$offset" "$log" | tail -n 20 >&2
      return 1
    fi
    sleep 0.1
  done
}

# SIGTERM (a clean stop: running tasks finish, the host lease is freed), SIGKILL after 15 s.
stop_pids() {
  local pid deadline=$((SECONDS + 15))
  for pid in "$@"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while alive "$pid"; do
      if [ $SECONDS -ge $deadline ]; then
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  done
}

# --- down --------------------------------------------------------------------------------------

down() {
  local dir=$1 purge=${2:-} host pids=() ns
  [ -f "$dir/hosts" ] || die "$dir is not a deployment (no $dir/hosts)"
  for host in $(hosts_of "$dir"); do pids+=("$(pid_of "$dir" "$host")"); done
  stop_pids "${pids[@]}"
  stop_pids "$(cat "$dir/forward.pid" 2>/dev/null || true)"
  for host in $(hosts_of "$dir"); do
    rm -f "$dir/$host/pid"
    ns=$(ns_of "$dir" "$host")
    # Deleting the namespace deletes its end of the veth pair, and with it this machine's end.
    if [ -n "$ns" ] && ip netns list | grep -qw "^$ns"; then ip netns del "$ns"; fi
  done
  rm -f "$dir/forward.pid"
  if [ "$purge" = --purge ]; then rm -rf "$dir"; fi
  echo "deployment in $dir stopped"
}

# --- up ----------------------------------------------------------------------------------------

up() {
  local dir=./deployment apis=2 agents=2 url=postgres://postgres@127.0.0.1:5432/skiff_deployment
  local netns=auto subnet=10.213 name=skiff skiff="node $ROOT/bin/skiff.js" api_args='' agent_args=''
  while [ $# -gt 0 ]; do
    case $1 in
    --dir) dir=$2 ;;
    --apis) apis=$2 ;;
    --agents) agents=$2 ;;
    --database-url) url=$2 ;;
    --netns) netns=$2 ;;
    --subnet) subnet=$2 ;;
    --name) name=$2 ;;
    --skiff) skiff=$2 ;;
    --api-args) api_args=$2 ;;
    --agent-args) agent_args=$2 ;;
    *) die "unknown option $1 (see the head of $0)" ;;
    esac
    shift 2
  done
  [[ $apis =~ ^[1-9][0-9]?$ && $agents =~ ^[0-9][0-9]?$ ]] || die '--apis 1-99, --agents 0-99'
  [[ $name =~ ^[a-z][a-z0-9]{0,7}$ ]] || die '--name: a letter, then up to 7 letters or digits (it names interfaces)'
  [[ $subnet =~ ^10\.[0-9]{1,3}$ ]] || die '--subnet: 10.X (host k gets 10.X.k.1 and 10.X.k.2)'
  [[ $url =~ ^postgres(ql)?://([^@/]*@)?([^/:?]+)(:([0-9]+))?/([A-Za-z0-9_]+)$ ]] ||
    die "--database-url: postgres://USER@HOST[:PORT]/DATABASE (got $url)"
  local dbhost=${BASH_REMATCH[3]} dbport=${BASH_REMATCH[5]:-5432} dbname=${BASH_REMATCH[6]}
  case $netns in
  on) [ "$(id -u)" = 0 ] && command -v ip >/dev/null || die '--netns on needs root and ip (iproute2)' ;;
  off) ;;
  auto) if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then netns=on; else netns=off; fi ;;
  *) die '--netns auto, on or off' ;;
  esac
  [ ! -e "$dir/hosts" ] || die "$dir holds a deployment already (scripts/deployment.sh down $dir --purge)"
  if [ "$skiff" = "node $ROOT/bin/skiff.js" ] && [ ! -f "$ROOT/dist/cli/main.js" ]; then
    die 'no build: run npm run build first (or give --skiff)'
  fi

  # One fresh database, made if it does not exist (psql, on the server's `postgres` database).
  if ! psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
    psql "${url%/*}/postgres" -qc "CREATE DATABASE $dbname" >/dev/null || die "cannot create database $dbname at $dbhost:$dbport"
  fi

  mkdir -p "$dir"
  chmod 700 "$dir"
  dir=$(cd "$dir" && pwd)
  local hosts=() host k=0
  for ((i = 1; i <= apis; i++)); do hosts+=("api$i"); done
  for ((i = 1; i <= agents; i++)); do hosts+=("hv$i"); done
  printf '%s\n' "${hosts[@]}" >"$dir/hosts"
  # From here on a failure (set -e, die) takes down what was started.
  started=''
  # shellcheck disable=SC2064 # the directory now, whatever scope the trap runs in
  trap "[ -n \"\$started\" ] || { echo 'deployment: start failed; stopping what was started' >&2; down $(printf %q "$dir") >/dev/null 2>&1 || true; }" EXIT

  local forwards=()
  for host in "${hosts[@]}"; do
    k=$((k + 1))
    mkdir -p "$dir/$host/data"
    chmod 700 "$dir/$host" "$dir/$host/data"
    local addr=127.0.0.1 hosturl=$url
    if [ "$netns" = on ]; then
      local ns="$name-$host" veth="$name$k"
      ip netns list | grep -qw "^$ns" && die "network namespace $ns exists already (another deployment named $name?)"
      echo "$ns" >"$dir/$host/netns"
      ip netns add "$ns"
      ip link add "$veth" type veth peer name eth0 netns "$ns"
      ip addr add "$subnet.$k.1/30" dev "$veth"
      ip link set "$veth" up
      ip -n "$ns" addr add "$subnet.$k.2/30" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
      addr=$subnet.$k.2
      forwards+=("$subnet.$k.1:$dbport")
      hosturl=$(echo "$url" | sed -E "s#^(postgres(ql)?://([^@/]*@)?)[^/:?]+(:[0-9]+)?#\1$subnet.$k.1:$dbport#")
    fi
    echo "$hosturl" >"$dir/$host/database-url"
    local cmd
    case $host in
    api*)
      local ports=(0 0 0 0 0 0)
      [ "$netns" = on ] && ports=(5000 8774 9292 8000 8776 6083)
      # shellcheck disable=SC2086 # the skiff command and the extra args are split on spaces
      cmd=$(printf '%q ' $skiff serve --no-agent --host "$addr" --identity-port "${ports[0]}" --compute-port "${ports[1]}" \
        --image-port "${ports[2]}" --dashboard-port "${ports[3]}" --volume-port "${ports[4]}" --serial-proxy-port "${ports[5]}" \
        --database-url "$hosturl" --data-dir "$dir/$host/data" $api_args)
      ;;
    *)
      # shellcheck disable=SC2086
      cmd=$(printf '%q ' $skiff agent --host "$host" --database-url "$hosturl" --data-dir "$dir/$host/data" $agent_args)
      ;;
    esac
    echo "$cmd" >"$dir/$host/cmd"
  done

  if [ "$netns" = on ]; then
    (cd "$ROOT" && exec node scripts/tcp-forward.js "$dbhost:$dbport" "${forwards[@]}") >"$dir/forward.log" 2>&1 </dev/null &
    echo $! >"$dir/forward.pid"
    local deadline=$((SECONDS + 10))
    until grep -q '^forwarding' "$dir/forward.log"; do
      alive "$(cat "$dir/forward.pid")" && [ $SECONDS -lt $deadline ] || {
        cat "$dir/forward.log" >&2
        false
      }
      sleep 0.1
    done
  fi

  # The first API process bootstraps; every other host gets the sealing key and the passwords.
  start_host "$dir" api1
  local first=$dir/api1/data
  for host in "${hosts[@]:1}"; do
    cp -p "$first/secret.key" "$dir/$host/data/secret.key"
    case $host in api*) cp -p "$first/.credentials.json" "$dir/$host/data/.credentials.json" ;; esac
  done
  local starting=()
  for host in "${hosts[@]:1}"; do
    start_host "$dir" "$host" &
    starting+=($!)
  done
  for p in "${starting[@]}"; do wait "$p"; done
  started=yes

  echo "Skiff deployment in $dir: $apis API processes, $agents agents, database $dbhost:$dbport/$dbname"
  echo "network namespaces: $([ "$netns" = on ] && echo "yes, database reached through scripts/tcp-forward.js" || echo no)"
  for host in "${hosts[@]}"; do
    local ns
    ns=$(ns_of "$dir" "$host")
    echo "$host${ns:+ (netns $ns)}: data dir $dir/$host/data, log $dir/$host/log, pid $(pid_of "$dir" "$host")"
    case $host in
    api*)
      # The URLs and client files as the process printed them in its banner.
      sed -nE 's#^  (identity|compute|image|dashboard) +(http://[^ ]+)$#  \1 \2#p' "$dir/$host/log" | tail -n 4
      sed -nE 's#^  (/.*(clouds\.yaml|-openrc))$#  client file \1#p' "$dir/$host/log" | tail -n 5
      ;;
    esac
  done
  echo "stop with: $0 down $dir"
}

# --- main --------------------------------------------------------------------------------------

[ $# -ge 1 ] || die "usage: $0 up|start|stop|skiff|down ... (see the head of $0)"
command=$1
shift
case $command in
up) up "$@" ;;
down)
  [ $# -ge 1 ] || die "usage: $0 down DIR [--purge]"
  down "$@"
  ;;
start)
  [ $# -eq 2 ] || die "usage: $0 start DIR HOST"
  start_host "$1" "$2"
  echo "$2 running, pid $(pid_of "$1" "$2")"
  ;;
stop)
  [ $# -eq 2 ] || die "usage: $0 stop DIR HOST"
  stop_pids "$(pid_of "$1" "$2")"
  rm -f "$1/$2/pid"
  ;;
skiff)
  [ $# -ge 2 ] || die "usage: $0 skiff DIR HOST ARGS..."
  dir=$1 host=$2
  shift 2
  [ -f "$dir/$host/cmd" ] || die "no host $host in $dir"
  # The recorded command's `skiff` part: everything before its serve/agent subcommand.
  skiff=$(sed -E 's/ (serve|agent) .*//' "$dir/$host/cmd")
  export SKIFF_DATABASE_URL SKIFF_DATA_DIR="$dir/$host/data"
  SKIFF_DATABASE_URL=$(cat "$dir/$host/database-url")
  in_host "$dir" "$host" bash -c "exec $skiff \"\$@\"" skiff "$@"
  ;;
*) die "unknown command $command (up, start, stop, skiff, down)" ;;
esac
