#!/usr/bin/env bash
# Plays an MCU on this machine for trying the SIP/MCU bridge by hand: sipp
# answers one call, and ffmpeg sends a test picture (VP8) and a tone (Opus) to
# the ports of confgate's offer until the call ends.
#
#   scripts/fake-mcu.sh [SIP_PORT]        default 5070; needs sipp and ffmpeg
#
# Then bind a conference to it and join it from a browser:
#
#   confgate conference bind CONF_ID --mcu sip:room@127.0.0.1:5070
#
# The page shows the test picture as its main video. Leaving the conference
# hangs up (sipp then exits and so does this script).
set -euo pipefail
port="${1:-5070}"
here="$(cd "$(dirname "$0")/.." && pwd)"
for tool in sipp ffmpeg; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install ${tool/sipp/sip-tester}" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "MCU on sip:room@127.0.0.1:$port, waiting for a call (Ctrl-C stops)"
# The answer names 127.0.0.1:41000/41002; ffmpeg sends from 127.0.0.1 (the
# answer's address: confgate takes the MCU's media only from there) on ports
# of its own, which confgate learns (symmetric RTP).
(cd "$work" && sipp -sf "$here/tests/data/sip/uas_answer.xml" -p "$port" -i 127.0.0.1 \
  -m 1 -nostdin -aa -key mcu_ip 127.0.0.1 -key mcu_aport 41000 -key mcu_vport 41002 \
  -mp 41100 -trace_logs -log_file uas.log >/dev/null 2>&1) &
sipp_pid=$!

until grep -q '^OFFER ' "$work/uas.log" 2>/dev/null; do
  kill -0 "$sipp_pid" 2>/dev/null || { echo "sipp stopped before a call came" >&2; exit 1; }
  sleep 0.2
done
offer="$(grep -m1 '^OFFER ' "$work/uas.log")"
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$offer"; }
ip="$(field ip)"; aport="$(field aport)"; vport="$(field vport)"
echo "call answered: sending to $ip audio $aport, video $vport"

ffmpeg -hide_banner -nostdin -loglevel error \
  -re -f lavfi -i testsrc=size=640x360:rate=15 \
  -re -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -map 0:v -c:v libvpx -deadline realtime -cpu-used 8 -b:v 500k -g 30 -payload_type "$(field vp8_pt)" \
    -f rtp "rtp://$ip:$vport?pkt_size=1200&localaddr=127.0.0.1" \
  -map 1:a -c:a libopus -b:a 32k -payload_type "$(field opus_pt)" \
    -f rtp "rtp://$ip:$aport?localaddr=127.0.0.1" >/dev/null &
wait "$sipp_pid" || true
echo "call over"
