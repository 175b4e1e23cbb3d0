#!/usr/bin/env bash
# The network namespace the side-by-side benchmark runs in (confgate, Janus and
# the load generator all inside it, so both servers are measured on the same
# path).
#
#   scripts/bench/netns.sh up            create it (no-op if it is already up)
#   scripts/bench/netns.sh down          remove it (no-op if it is absent)
#   scripts/bench/netns.sh status        print its links and addresses
#   scripts/bench/netns.sh exec CMD...   run CMD inside it
#
# The namespace (default name "cgbench", override with CGBENCH_NETNS) has lo up
# and one veth pair with both ends inside: veth0 = 10.77.0.1/24 and veth1 (no
# address). Janus skips loopback interfaces when it gathers ICE candidates, so
# its media must use veth0; see scripts/bench/README.md. Needs root.
set -euo pipefail

NS="${CGBENCH_NETNS:-cgbench}"
ADDR="10.77.0.1/24"

die() { echo "netns.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 up|down|status|exec CMD..." >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (ip netns needs CAP_SYS_ADMIN)"
command -v ip >/dev/null || die "the 'ip' command is missing: apt-get install iproute2"

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$NS"; }
in_ns() { ip netns exec "$NS" "$@"; }

up() {
  if ! ns_exists; then
    ip netns add "$NS" || die "cannot create namespace $NS"
  fi
  in_ns ip link set lo up
  if ! in_ns ip link show veth0 >/dev/null 2>&1; then
    # A half-deleted pair cannot exist (deleting one end deletes both), but a
    # stray veth1 alone can: remove it so the add below succeeds.
    in_ns ip link del veth1 >/dev/null 2>&1 || true
    in_ns ip link add veth0 type veth peer name veth1 \
      || die "cannot create the veth pair veth0/veth1 in $NS (is the veth module available?)"
  fi
  in_ns ip addr replace "$ADDR" dev veth0
  in_ns ip link set veth0 up
  in_ns ip link set veth1 up
  # veth0 has carrier only once both ends are up; wait briefly for it so a
  # program started right after 'up' sees the address as usable.
  for _ in $(seq 1 50); do
    if in_ns ip -o link show veth0 | grep -q 'LOWER_UP'; then break; fi
    sleep 0.1
  done
  echo "namespace $NS is up: lo, veth0 ${ADDR%/*}, veth1"
}

down() {
  if ! ns_exists; then
    echo "namespace $NS is not there (nothing to do)"
    return 0
  fi
  local pids
  pids="$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')"
  if [ -n "${pids// /}" ]; then
    die "processes still run inside $NS (pids: ${pids% }); stop them first (e.g. scripts/bench/janus.sh stop)"
  fi
  ip netns del "$NS" || die "cannot delete namespace $NS"
  echo "namespace $NS removed"
}

status() {
  ns_exists || die "namespace $NS does not exist (run: $0 up)"
  in_ns ip -br link
  in_ns ip -br addr
}

[ $# -ge 1 ] || usage
cmd="$1"; shift
case "$cmd" in
  up) [ $# -eq 0 ] || usage; up ;;
  down) [ $# -eq 0 ] || usage; down ;;
  status) [ $# -eq 0 ] || usage; status ;;
  exec)
    [ $# -ge 1 ] || usage
    ns_exists || die "namespace $NS does not exist (run: $0 up)"
    exec ip netns exec "$NS" "$@"
    ;;
  *) usage ;;
esac
