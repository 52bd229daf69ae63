#!/usr/bin/env bash
# Builds and runs the protocol fuzzer: fuzz/protocol/build.sh [seconds] (default 60).
# The CMake target fuzz_protocol (fuzz/CMakeLists.txt) in build-fuzz/, built with clang (libFuzzer,
# ASan, UBSan; `scripts/setup --fuzz` installs it). It starts from corpus/ and what earlier runs
# found (build-fuzz/fuzz/protocol-corpus/); crashes land in build-fuzz/fuzz/findings/ (add the
# reproducer to corpus/ once fixed).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=build-fuzz BUILD_TYPE=RelWithDebInfo TARGETS=fuzz_protocol scripts/build -DCMAKE_CXX_COMPILER=clang++ \
  -DDECODELAB_FUZZ=ON -DDECODELAB_TESTS=OFF -DDECODELAB_CUDA=OFF -DDECODELAB_BENCHMARKS=OFF \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DDECODELAB_FUZZ_SECONDS=${1:-60}"
cd build-fuzz && ctest -V -R '^fuzz\.protocol$'
