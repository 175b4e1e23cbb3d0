#!/usr/bin/env bash
# The side-by-side media benchmark: confgate and Janus 1.1.2 (VideoRoom, and
# Streaming for S3), the same load generator, the same scenarios, each with
# the SRTP profile pinned to AES-CM and then to AES-GCM. Everything runs in
# the network namespace of netns.sh (Janus cannot use loopback), the generator
# pinned to core 0 and the server to core 1.
#
#   scripts/bench/run.sh [--quick] [--only confgate|janus] [--baseline REV]
#                        [--scenarios s1,s2,s3,s4]
#
# --baseline REV also runs the confgate scenarios on confgate as built from git
# revision REV (labelled "before", same generator) and writes a second table,
# bench-results/<date>-vs-before.md: the before/after ratio of a change.
# --scenarios runs only those scenarios (the S1 sweep alone, say); S1_SWEEP,
# S2_SIZES, S3_SIZES, DURATION and SRTP_PROFILES in the environment replace
# the defaults; GEN_IO=webrtc puts the members on webrtc-rs's stack instead of
# the lean connections (confgate-loadgen --rx and --tx).
#
# Every publisher paces its video as a browser does (2.5 times its rate, in
# bursts at most 5 ms apart; confgate-loadgen --pace).
#
# Scenarios (confgate-loadgen --help):
#   S1  one publisher, N viewers, N swept (33 to 257): the knee is the most
#       members with loss <= 0.5% and p99 added latency <= 5 ms; a server's
#       sweep ends after two points in a row beyond it;
#   S2  all-to-all meetings of 4, 8 and 16 (16 members in all each time);
#   S3  the MCU direction, plain RTP in and WebRTC out, 8 and 32 members who
#       do not publish: on confgate a conference bound to the generator's MCU
#       (a SIP UAS at $IP:$MCU_PORT that confgate calls once per member, each
#       call fed its own stream; sip.publish_wait_ms = 0 so the calls go out
#       at join), on Janus one Streaming mountpoint per viewer, each fed its
#       own stream;
#   S4  a join storm: 40 viewers joining at 20 a second (join time).
#
# Writes bench-results/<date>.json, .md and -<metric>.svg, and prints the
# table. Needs root (namespaces), Debian's janus (installed if missing).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/scripts/bench"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/confgate-target}"

quick=0
only=""
baseline=""
scenarios="s1,s2,s3,s4"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) only="$2"; shift ;;
    --baseline) baseline="$2"; shift ;;
    --scenarios) scenarios="$2"; shift ;;
    *) echo "usage: $0 [--quick] [--only confgate|janus] [--baseline REV] [--scenarios s1,s2,s3,s4]" >&2; exit 2 ;;
  esac
  shift
done

[ "$(id -u)" -eq 0 ] || { echo "run.sh: must run as root (network namespaces)" >&2; exit 1; }
nproc_=$(nproc)
if [ "$nproc_" -lt 2 ]; then
  echo "run.sh: needs 2 cores (generator and server on one each); this machine has $nproc_" >&2
  exit 1
fi

IP=10.77.0.1
PORT=18080
GEN_CPU=0
SERVER_CPU=1
if [ "$quick" = 1 ]; then
  s1_sweep="17 65"; s2_sizes="4"; s3_sizes="8"; S4_MEMBERS=20; duration=5
else
  s1_sweep="33 49 65 81 97 129 193 257"; s2_sizes="4 8 16"; s3_sizes="8 32"; S4_MEMBERS=40; duration=8
fi
S1_SWEEP="${S1_SWEEP:-$s1_sweep}"
S2_SIZES="${S2_SIZES:-$s2_sizes}"
S3_SIZES="${S3_SIZES:-$s3_sizes}"
DURATION="${DURATION:-$duration}"
SRTP_PROFILES="${SRTP_PROFILES:-aes-cm aes-gcm}"
# The members' connections: lean (rtc's sans-I/O core: the kernel's receive time, packets
# stamped as they leave, so the generator's own work is not counted) or webrtc (webrtc-rs).
GEN_IO="${GEN_IO:-lean}"
# Whether scenario $1 is to run.
wanted() { [[ ",$scenarios," == *",$1,"* ]]; }
# The generator's MCU (S3 on confgate).
MCU_PORT=5070
S2_MEMBERS=16

work="$(mktemp -d /tmp/cgbench-run.XXXXXX)"
if [ -n "$baseline" ]; then
  # Built first, in the same target directory (the dependencies are shared), and
  # set aside before this tree's build takes the binary's place.
  echo "== building confgate at $baseline (release), the baseline"
  git -C "$root" worktree add --detach -q "$work/baseline-src" "$baseline"
  (cd "$work/baseline-src" && cargo build --release -q -p confgate)
  cp "$CARGO_TARGET_DIR/release/confgate" "$work/confgate-before"
  git -C "$root" worktree remove --force "$work/baseline-src"
fi
echo "== building (release)"
cargo build --release -q -p confgate -p confgate-loadgen
bin="$CARGO_TARGET_DIR/release"
# The confgate binary the confgate runs use, and the label of their results.
confgate_bin="$bin/confgate"
confgate_label=confgate

results="$work/results"
mkdir -p "$results"
server_pid=""
confgate_pid=""
cleanup() {
  [ -n "$confgate_pid" ] && kill "$confgate_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  "$here/janus.sh" stop >/dev/null 2>&1 || true
  "$here/netns.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$here/netns.sh" up >/dev/null
# Both cores stay out of idle halts for the whole run (PM QoS: a CPU wake-up latency of 0
# while this file is held open, as tuned's latency-performance profile asks). On this kind
# of virtual machine a halted vCPU can take milliseconds to wake: that, not the server under
# test, would set the p99 latency at light load, for both servers alike.
if exec 9>/dev/cpu_dma_latency 2>/dev/null; then
  printf '\x00\x00\x00\x00' >&9
else
  echo "(no /dev/cpu_dma_latency: idle cores may add wake-up latency)"
fi
ns() { "$here/netns.sh" exec "$@"; }
started=$(date +%s)

# One run of the generator; $1 = result name, the rest its options.
loadgen() {
  local name="$1"; shift
  echo "-- $name"
  ns taskset -c "$GEN_CPU" "$bin/confgate-loadgen" --bind-ip "$IP" --duration "$DURATION" \
    --rx "$GEN_IO" --tx "$GEN_IO" --json "$results/$name.json" "$@" || echo "   ($name failed; its result is missing)"
}

# past_knee RESULT: the run of RESULT (JSON) was beyond the knee (a viewer received nothing,
# loss > 0.5% or p99 > 5 ms; the report's own test), or its result is missing.
past_knee() {
  python3 - "$1" <<'PY'
import json, sys
try:
    run = json.load(open(sys.argv[1]))
    s = run["summary"]
except (OSError, ValueError, KeyError):
    sys.exit(0)
healthy = (s["members_receiving"] + 1 >= run["members"] and s["loss"] <= 0.005
           and s["latency_p99_us"] is not None and s["latency_p99_us"] <= 5000)
sys.exit(1 if healthy else 0)
PY
}
# s1_sweep RUNNER LABEL SRTP: the S1 sweep; it ends after two points in a row beyond the knee
# (the knee is the most members of a healthy run, and more viewers only cost more).
s1_sweep() {
  local runner="$1" label="$2" srtp="$3" beyond=0
  for n in $S1_SWEEP; do
    "$runner" "s1-$srtp-$n" --srtp "$srtp" --scenario s1 --members "$n"
    if past_knee "$results/$label-s1-$srtp-$n.json"; then
      beyond=$((beyond + 1))
      if [ "$beyond" -ge 2 ]; then
        echo "   ($label, $srtp: two points beyond the knee; the sweep ends at $n)"
        break
      fi
    else
      beyond=0
    fi
  done
}

# --- confgate --------------------------------------------------------------
# A fresh server for every run: its CPU time and memory are that run's alone.
CONFGATE_DATA="$work/confgate-data"
# start_confgate [VAR=VALUE...]: extra settings in confgate's environment.
start_confgate() {
  rm -rf "$CONFGATE_DATA"
  ns env CONFGATE_MEDIA__BIND_IP="$IP" "$@" RUST_LOG=warn taskset -c "$SERVER_CPU" \
    "$confgate_bin" --data-dir "$CONFGATE_DATA" --plain-http --listen "$IP:$PORT" \
    --public-url "http://$IP:$PORT" serve --no-demo >>"$work/confgate.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 50); do
    ns curl -sf "http://$IP:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  ns curl -sf "http://$IP:$PORT/healthz" >/dev/null || { tail -20 "$work/confgate.log"; exit 1; }
  # The confgate process itself (under the namespace and taskset wrappers).
  confgate_pid=$(pgrep -f -- "--data-dir $CONFGATE_DATA --plain-http" | tail -1)
}
stop_confgate() {
  kill "$confgate_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
# A conference's join link.
link() {
  local code
  code=$("$confgate_bin" --data-dir "$CONFGATE_DATA" conference create --name bench --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["links"][0].rsplit("/",1)[1])')
  echo "http://$IP:$PORT/gzbwclient/conference/$code"
}
confgate_run() {
  local name="$1"; shift
  start_confgate
  local links=()
  for _ in $(seq 1 "$1"); do links+=(--link "$(link)"); done
  shift
  loadgen "$confgate_label-$name" --label "$confgate_label" --server-pid "$confgate_pid" "${links[@]}" "$@"
  stop_confgate
}
# S3: one conference bound to the generator's MCU; $1 = result name, the rest
# the generator's options. Members who do not publish are called at once.
confgate_s3_run() {
  local name="$1"; shift
  start_confgate CONFGATE_SIP__PUBLISH_WAIT_MS=0
  local created conf code
  created=$("$confgate_bin" --data-dir "$CONFGATE_DATA" conference create --name bench-s3 --json)
  conf=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["confId"])' <<<"$created")
  code=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["links"][0].rsplit("/",1)[1])' <<<"$created")
  "$confgate_bin" --data-dir "$CONFGATE_DATA" conference bind "$conf" \
    --mcu "sip:room@$IP:$MCU_PORT" --codecs opus,vp8 >/dev/null
  loadgen "$confgate_label-$name" --label "$confgate_label" --server-pid "$confgate_pid" \
    --link "http://$IP:$PORT/gzbwclient/conference/$code" --mcu-listen "$IP:$MCU_PORT" "$@"
  stop_confgate
}

# One S1 run: one conference.
confgate_s1_run() {
  local name="$1"; shift
  confgate_run "$name" 1 "$@"
}

run_confgate() {
  echo "== $confgate_label ($confgate_bin) on core $SERVER_CPU"
  for srtp in $SRTP_PROFILES; do
    if wanted s1; then
      s1_sweep confgate_s1_run "$confgate_label" "$srtp"
    fi
    if wanted s2; then
      for size in $S2_SIZES; do
        confgate_run "s2-$srtp-$size" $((S2_MEMBERS / size)) --srtp "$srtp" --scenario s2 \
          --members "$S2_MEMBERS" --meeting-size "$size"
      done
    fi
    if wanted s3; then
      for n in $S3_SIZES; do
        confgate_s3_run "s3-$srtp-$n" --srtp "$srtp" --scenario s3 --members "$n"
      done
    fi
    if wanted s4; then
      confgate_run "s4-$srtp" 1 --srtp "$srtp" --scenario s4 --members "$S4_MEMBERS" --join-rate 20
    fi
  done
}

# --- Janus -----------------------------------------------------------------
# JANUS_PLUGIN=streaming janus_run ... for S3.
janus_run() {
  local name="$1"; shift
  "$here/janus.sh" start --plugin "${JANUS_PLUGIN:-videoroom}" --event-loops 1 \
    --cpu "$SERVER_CPU" >>"$work/janus-start.log"
  local pid
  pid=$(cat "${CGBENCH_JANUS_STATE:-/run/cgbench-janus}/pid")
  loadgen "janus-$name" --target janus --label janus --server-pid "$pid" --janus-room 7700 "$@"
  "$here/janus.sh" stop >/dev/null
}

run_janus() {
  echo "== Janus on core $SERVER_CPU (one shared event loop; Streaming plugin for S3)"
  for srtp in $SRTP_PROFILES; do
    if wanted s1; then
      s1_sweep janus_run janus "$srtp"
    fi
    if wanted s2; then
      for size in $S2_SIZES; do
        janus_run "s2-$srtp-$size" --srtp "$srtp" --scenario s2 --members "$S2_MEMBERS" \
          --meeting-size "$size"
      done
    fi
    if wanted s3; then
      for n in $S3_SIZES; do
        # One mountpoint per viewer (ids 7700.., RTP ports 20000..), as confgate
        # has one MCU call per member.
        JANUS_PLUGIN=streaming janus_run "s3-$srtp-$n" --srtp "$srtp" --scenario s3 \
          --members "$n" --janus-mountpoints per-member --janus-rtp-port 20000
      done
    fi
    if wanted s4; then
      janus_run "s4-$srtp" --srtp "$srtp" --scenario s4 --members "$S4_MEMBERS" --join-rate 20
    fi
  done
}

[ "$only" = "janus" ] || run_confgate
[ "$only" = "confgate" ] || run_janus
if [ -n "$baseline" ]; then
  confgate_bin="$work/confgate-before" confgate_label=before run_confgate
fi

mkdir -p bench-results
out="bench-results/$(date -u +%Y-%m-%d)"
echo "== results ($(( $(date +%s) - started )) s of runs)"
shopt -s nullglob
if [ "$only" != "confgate" ] || [ -z "$baseline" ]; then
  "$bin/confgate-bench-report" --out "$out" "$results"/confgate-*.json "$results"/janus-*.json
fi
if [ -n "$baseline" ]; then
  echo "== confgate beside its build at $baseline"
  "$bin/confgate-bench-report" --peer before --out "$out-vs-before" \
    "$results"/confgate-*.json "$results"/before-*.json
fi
echo "raw results and logs: $work"
