#!/usr/bin/env bash
# Builds and runs the GGUF fuzzer: fuzz/gguf/build.sh [seconds] (default 60).
# Needs clang (libFuzzer ships with it) and libpcre2-dev (the tokenizer). Findings land in
# fuzz/gguf/findings/ (not committed; add the reproducer to corpus/ once fixed).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out" fuzz/gguf/findings
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -march=native -Wno-unknown-pragmas \
  -I. fuzz/gguf/fuzz_gguf.cpp core/model/gguf.cpp core/model/gguf_model.cpp core/model/quants.cpp core/model/q8_dot.cpp \
  core/text/tokenizer.cpp core/language_model.cpp core/model_factory.cpp core/table_model.cpp core/philox.cpp \
  core/params.cpp core/error.cpp core/distribution.cpp \
  -lpcre2-8 -o "$out/fuzz_gguf"
seconds=${1:-60}
work=$(mktemp -d)
cp fuzz/gguf/corpus/* "$work"/ 2>/dev/null || true
"$out/fuzz_gguf" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz/gguf/findings/ "$work"
rm -rf "$work"
