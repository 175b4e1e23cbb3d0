#!/usr/bin/env bash
# Profiles confgate's media path with perf under one benchmark scenario:
# the server on core 1 and the generator on core 0, in the benchmark's
# namespace, as run.sh does; perf samples the server during the measurement.
#
#   scripts/bench/profile.sh [LOADGEN OPTIONS...]
#   (default: --scenario s2 --members 16 --meeting-size 16 --srtp aes-gcm)
#
# Prints the hottest functions (self time) and leaves perf.data in a
# temporary folder for `perf report -i`.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/scripts/bench"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/confgate-target}"
[ "$(id -u)" -eq 0 ] || { echo "profile.sh: must run as root" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
IP=10.77.0.1
PORT=18080
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--scenario s2 --members 16 --meeting-size 16 --srtp aes-gcm)

cargo build --release -q -p confgate -p confgate-loadgen
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d /tmp/cgbench-profile.XXXXXX)"
data="$work/data"
"$here/netns.sh" up >/dev/null
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  "$here/netns.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$here/netns.sh" exec env CONFGATE_MEDIA__BIND_IP="$IP" RUST_LOG=warn taskset -c 1 \
  "$bin/confgate" --data-dir "$data" --plain-http --listen "$IP:$PORT" \
  --public-url "http://$IP:$PORT" serve --no-demo >"$work/confgate.log" 2>&1 &
for _ in $(seq 1 50); do
  "$here/netns.sh" exec curl -sf "http://$IP:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
pid=$(pgrep -f -- "--data-dir $data --plain-http" | tail -1)
links=()
conferences=1
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--meeting-size" ]; then size="${args[$((i + 1))]}"; fi
  if [ "${args[$i]}" = "--members" ]; then members="${args[$((i + 1))]}"; fi
done
[ -n "${size:-}" ] && conferences=$(( (${members:-4} + size - 1) / size ))
for _ in $(seq 1 "$conferences"); do
  code=$("$bin/confgate" --data-dir "$data" conference create --name profile --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["links"][0].rsplit("/",1)[1])')
  links+=(--link "http://$IP:$PORT/gzbwclient/conference/$code")
done
"$here/netns.sh" exec taskset -c 0 "$bin/confgate-loadgen" --bind-ip "$IP" --quiet \
  --server-pid "$pid" --duration 15 --settle 3 "${links[@]}" "${args[@]}" &
gen=$!
# Joins and settling first; then 10 s of the measurement.
sleep 8
perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" -- sleep 10 2>/dev/null
wait "$gen"
perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
  grep -E '^ +[0-9]+\.[0-9]+%' | head -40
echo "perf data: $work/perf.data"
