#!/usr/bin/env bash
# capi.install: `cmake --install` into a temporary prefix, then build and run the tiny consumer
# project in consumer/ against it twice: with find_package(decodelab) (CMake) and with the flags
# `pkg-config decodelab` gives (a plain compiler command). Neither sees the build tree.
# Usage: install_consumer.sh BUILD_DIR CONSUMER_SOURCE_DIR C_COMPILER CXX_COMPILER [EXTRA_FLAGS]
set -euo pipefail
build=$1 source=$2 cc=$3 cxx=$4 flags=${5:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in include/decodelab/decodelab.h include/decodelab/decoder.hpp include/decodelab/sampler_factories.hpp; do
  [ -f "$prefix/$f" ] || { echo "install: $f is missing from the prefix" >&2; exit 1; }
done
config=$(find "$prefix" -name decodelabConfig.cmake)
pc=$(find "$prefix" -name decodelab.pc)
[ -n "$config" ] && [ -n "$pc" ] || { echo "install: no decodelabConfig.cmake or decodelab.pc" >&2; exit 1; }

echo "== find_package(decodelab)"
cmake -S "$source" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_CXX_COMPILER="$cxx" "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" "-DCMAKE_EXE_LINKER_FLAGS=$flags" >"$tmp/configure.log" ||
  { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/cmake-build" >"$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }
# The consumer must have found the installed library, not the build tree's.
grep -q "decodelab_DIR:PATH=$prefix" "$tmp/cmake-build/CMakeCache.txt" ||
  { echo "install: the consumer did not find the installed package" >&2; exit 1; }
"$tmp/cmake-build/consumer"
"$tmp/cmake-build/consumer_cpp"
"$tmp/cmake-build/consumer_library"

echo "== pkg-config decodelab"
export PKG_CONFIG_PATH=$(dirname "$pc")
cflags=$(pkg-config --cflags decodelab)
libs=$(pkg-config --libs decodelab)
libdir=$(pkg-config --variable=libdir decodelab)
[ "$(cd "$libdir" && pwd -P)" = "$(cd "$(dirname "$pc")/.." && pwd -P)" ] ||
  { echo "install: decodelab.pc's libdir $libdir is not where it lies" >&2; exit 1; }
# shellcheck disable=SC2086 # the flags are words
"$cc" -std=c99 $flags $cflags "$source/consumer.c" -o "$tmp/consumer-pc" $libs -lm
LD_LIBRARY_PATH=$libdir "$tmp/consumer-pc"
# shellcheck disable=SC2086
"$cxx" -std=c++17 $flags $cflags "$source/consumer.cpp" -o "$tmp/consumer-cpp-pc" $libs
LD_LIBRARY_PATH=$libdir "$tmp/consumer-cpp-pc"
