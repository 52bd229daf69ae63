#!/usr/bin/env bash
# Builds and runs the protocol fuzzer: fuzz/protocol/build.sh [seconds] (default 60).
# Needs clang (libFuzzer ships with it). Findings land in fuzz/protocol/findings/ (gitignored
# build output; add a reproducer to corpus/ once fixed).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out" fuzz/protocol/findings
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DMSGPACK_NO_BOOST -I. fuzz/protocol/fuzz_protocol.cpp daemon/protocol.cpp core/error.cpp \
  -o "$out/fuzz_protocol"
seconds=${1:-60}
work=$(mktemp -d)
cp fuzz/protocol/corpus/* "$work"/ 2>/dev/null || true
"$out/fuzz_protocol" -max_total_time="$seconds" -max_len=4096 -artifact_prefix=fuzz/protocol/findings/ "$work"
rm -rf "$work"
