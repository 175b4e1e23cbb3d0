#!/usr/bin/env bash
# Starts and stops Janus 1.1.2 (VideoRoom, or Streaming for S3) inside the
# benchmark namespace, the peer that confgate is measured beside.
#
#   scripts/bench/janus.sh start [--plugin videoroom|streaming] [--event-loops N] [--cpu CORE] [--debug-level L]
#   scripts/bench/janus.sh stop
#   scripts/bench/janus.sh status
#
# start: installs the Debian package 'janus' if it is missing, brings the
#   namespace up (netns.sh up), writes the configs of scripts/bench/janus/ to a
#   fresh temporary folder, runs 'janus -F FOLDER' inside the namespace
#   (pinned to CORE with taskset if --cpu is given), waits until the WebSocket
#   API at ws://127.0.0.1:8188 (inside the namespace) accepts a
#   'janus-protocol' connection, and prints the pid and the log file.
#   --plugin P       the one plugin loaded: videoroom (default) or streaming.
#   --event-loops N  shared event loops; 0 = one thread per handle (Janus's
#                    default). Default: 1 with --cpu, else the number of cores.
#   --debug-level L  Janus log level, default 3 (warnings and errors).
# stop: ends that Janus (SIGTERM, then SIGKILL after 10 s).
#
# Needs root. State (pid, folder) is kept in /run/cgbench-janus (override
# with CGBENCH_JANUS_STATE).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
NS="${CGBENCH_NETNS:-cgbench}"
export CGBENCH_NETNS="$NS"
STATE="${CGBENCH_JANUS_STATE:-/run/cgbench-janus}"
WS_PORT=8188
START_TIMEOUT=30

die() { echo "janus.sh: $*" >&2; exit 1; }
usage() {
  echo "usage: $0 start [--plugin videoroom|streaming] [--event-loops N] [--cpu CORE] [--debug-level L] | stop | status" >&2
  exit 2
}

[ "$(id -u)" -eq 0 ] || die "must run as root"

running_pid() {
  # Prints the pid of the Janus this script started, if it still runs.
  local pid
  [ -f "$STATE/pid" ] || return 1
  pid="$(cat "$STATE/pid")"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "janus" ] || return 1
  echo "$pid"
}

# True once something in the namespace answers a WebSocket upgrade on
# 127.0.0.1:$WS_PORT with subprotocol janus-protocol (HTTP 101).
ws_answers() {
  ip netns exec "$NS" bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$WS_PORT"' || exit 1
    printf "GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: janus-protocol\r\n\r\n" '"$WS_PORT"' >&3
    IFS= read -r -t 3 status <&3 || exit 1
    exec 3<&-
    case "$status" in *" 101 "*) exit 0 ;; *) exit 1 ;; esac
  ' 2>/dev/null
}

port_in_use() {
  ip netns exec "$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1" 2>/dev/null
}

install_janus() {
  command -v janus >/dev/null && return 0
  echo "janus is missing: installing the Debian package"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends janus; then
    apt-get update
    apt-get install -y --no-install-recommends janus || die "apt-get install janus failed"
  fi
  command -v janus >/dev/null || die "janus is still not on PATH after installing"
}

start() {
  local event_loops="" cpu="" debug_level=3 plugin=videoroom
  while [ $# -gt 0 ]; do
    case "$1" in
      --plugin) [ $# -ge 2 ] || usage; plugin="$2"; shift 2 ;;
      --event-loops) [ $# -ge 2 ] || usage; event_loops="$2"; shift 2 ;;
      --cpu) [ $# -ge 2 ] || usage; cpu="$2"; shift 2 ;;
      --debug-level) [ $# -ge 2 ] || usage; debug_level="$2"; shift 2 ;;
      *) usage ;;
    esac
  done
  if [ -z "$event_loops" ]; then
    if [ -n "$cpu" ]; then event_loops=1; else event_loops="$(nproc)"; fi
  fi
  [[ "$event_loops" =~ ^[0-9]+$ ]] || die "--event-loops wants a number >= 0, not '$event_loops'"
  [[ "$debug_level" =~ ^[0-7]$ ]] || die "--debug-level wants 0..7, not '$debug_level'"
  # Every plugin of the package but the one run.
  local all_plugins="audiobridge duktape echotest lua nosip recordplay sip streaming textroom videocall videoroom voicemail"
  case "$plugin" in
    videoroom|streaming) ;;
    *) die "--plugin wants videoroom or streaming, not '$plugin'" ;;
  esac
  local disabled="" p
  for p in $all_plugins; do
    [ "$p" = "$plugin" ] && continue
    disabled="${disabled:+$disabled,}libjanus_$p.so"
  done
  if [ -n "$cpu" ]; then
    [[ "$cpu" =~ ^[0-9]+$ ]] || die "--cpu wants one core number, not '$cpu'"
    [ "$cpu" -lt "$(nproc --all)" ] || die "--cpu $cpu: this machine has cores 0..$(( $(nproc --all) - 1 ))"
    command -v taskset >/dev/null || die "taskset is missing: apt-get install util-linux"
  fi

  if pid="$(running_pid)"; then
    die "Janus already runs (pid $pid, folder $(cat "$STATE/dir")); run '$0 stop' first"
  fi
  install_janus
  "$here/netns.sh" up >/dev/null
  if port_in_use "$WS_PORT"; then
    die "127.0.0.1:$WS_PORT is already taken inside namespace $NS (another Janus or confgate?)"
  fi

  local dir log
  dir="$(mktemp -d /tmp/cgbench-janus.XXXXXX)"
  log="$dir/janus.log"
  for f in janus.jcfg janus.transport.http.jcfg janus.transport.websockets.jcfg \
           janus.plugin.videoroom.jcfg janus.plugin.streaming.jcfg; do
    [ -f "$here/janus/$f" ] || die "missing config $here/janus/$f"
    sed -e "s|@CONF_DIR@|$dir|g" -e "s|@EVENT_LOOPS@|$event_loops|g" \
        -e "s|@DEBUG_LEVEL@|$debug_level|g" -e "s|@DISABLED_PLUGINS@|$disabled|g" \
        "$here/janus/$f" > "$dir/$f"
  done
  if grep -n '@[A-Z_]*@' "$dir"/*.jcfg; then rm -rf "$dir"; die "unreplaced placeholder in $dir"; fi

  local pin=()
  [ -n "$cpu" ] && pin=(taskset -c "$cpu")
  # Many peer connections need many descriptors.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
  # 'ip netns exec' and 'taskset' both exec, so $! is Janus's own pid.
  nohup ip netns exec "$NS" "${pin[@]}" janus -F "$dir" </dev/null >"$log" 2>&1 &
  local pid=$!
  mkdir -p "$STATE"
  echo "$pid" > "$STATE/pid"
  echo "$dir" > "$STATE/dir"

  local deadline=$(( SECONDS + START_TIMEOUT ))
  until ws_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$log" >&2 || true
      rm -f "$STATE/pid"
      die "Janus exited during start-up; log: $log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$log" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$STATE/pid"
      die "the WebSocket API did not answer within ${START_TIMEOUT}s; log: $log"
    fi
    sleep 0.2
  done
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "janus" ] || die "pid $pid is not janus (unexpected)"
  echo "janus started: pid $pid"
  echo "  namespace $NS, ws://127.0.0.1:$WS_PORT (subprotocol janus-protocol), http://127.0.0.1:8088/janus"
  echo "  plugin=$plugin event_loops=$event_loops cpu=${cpu:-any} debug_level=$debug_level"
  echo "  config: $dir"
  echo "  log: $log"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$STATE/pid"
    echo "janus is not running (nothing to do)"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ]; then
    echo "janus (pid $pid) ignored SIGTERM for 10 s: sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$STATE/pid"
  echo "janus stopped (pid $pid); log: $(cat "$STATE/dir" 2>/dev/null)/janus.log"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "janus runs: pid $pid, folder $(cat "$STATE/dir")"
  else
    echo "janus is not running"
    return 1
  fi
}

[ $# -ge 1 ] || usage
cmd="$1"; shift
case "$cmd" in
  start) start "$@" ;;
  stop) [ $# -eq 0 ] || usage; stop ;;
  status) [ $# -eq 0 ] || usage; status ;;
  *) usage ;;
esac
