#!/usr/bin/env bash
# The opt-in adapters suite (scripts/test adapters): decodelab inside transformers (torch) and
# llama.cpp (the llama.h and libllama that llama-cpp-python installs). Needs a build with the
# Python binding (BUILD_DIR, default build/) and a Python with torch, transformers and
# llama-cpp-python (PYTHON, default .venv/bin/python). Exits non-zero on the first failure.
#   adapters/run_tests.sh            both parts
#   adapters/run_tests.sh hf         the transformers part only
#   adapters/run_tests.sh llama      the llama.cpp part only
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
python=${PYTHON:-.venv/bin/python}
parts=${1:-hf llama}

if [[ " $parts " == *" hf "* ]]; then
  echo "== adapters: transformers LogitsProcessor and speculative generate"
  # The suite exists to run these: a missing torch or transformers is a failure, not a skip.
  "$python" -c 'import torch, transformers' ||
    { echo "adapters: $python cannot import torch and transformers" >&2; exit 1; }
  PYTHONPATH="$PWD/$build/python" "$python" -m pytest -q -p no:cacheprovider adapters/tests
fi

if [[ " $parts " != *" llama "* ]]; then exit 0; fi
echo "== adapters: llama.cpp sampler (llama_sampler_i over a decodelab chain)"
package=$("$python" -c 'import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))')
# llama-cpp-python installs the headers into site-packages/include (some versions inside the package).
header=$(find "$package" "$(dirname "$package")/include" -name llama.h -print -quit 2>/dev/null || true)
library=$(find "$package" -name 'libllama.so*' -print -quit || true)
if [ -z "$header" ] || [ -z "$library" ]; then
  echo "adapters: llama-cpp-python at $package has no llama.h or libllama.so (found: '$header' '$library')" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -Wall -Wextra -Werror -I"$(dirname "$header")" -Iinclude \
  adapters/llama_cpp/decodelab_llama_sampler.c adapters/llama_cpp/test_llama_sampler.c -o "$tmp/test_llama_sampler" \
  -L"$(dirname "$library")" -lllama -L"$build/lib" -ldecodelab -lm \
  -Wl,-rpath,"$(dirname "$library")" -Wl,-rpath,"$PWD/$build/lib"
"$tmp/test_llama_sampler"
