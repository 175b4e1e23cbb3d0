#!/usr/bin/env bash
# Fuzzes confgate's parsers of untrusted bytes with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [TARGET] [SECONDS]     defaults: sip_parse, 30
#   targets: sip_parse (SIP messages and TCP framing), sdp_answer (the MCU's SDP)
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer=address); on a stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them. The fuzz crate (fuzz/) is outside
# the workspace so that ordinary builds never see those flags. New corpus
# entries go to fuzz/corpus/TARGET (ignored by git); fuzz/seeds/TARGET holds
# the committed seeds (which `cargo test -p confgate-signalling --test
# fuzz_seeds` replays, cut and flipped, on every test run); a crash is written to fuzz/artifacts/TARGET/ with the
# command that replays it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target="${1:-sip_parse}"
seconds="${2:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "corpus/$target"
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$seconds" -print_final_stats=1
