#!/usr/bin/env bash
# capi.exports: libdecodelab.so exports the C API and nothing else, so a host engine that links
# its own libstdc++ templates, PCRE2 or a different decodelab build cannot clash with it.
# Usage: exports.sh LIBRARY
set -euo pipefail
lib=$1
symbols=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TtDdBbRrVvWwiu]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$symbols" ] || { echo "exports: $lib exports no symbols" >&2; exit 1; }
others=$(grep -v '^decodelab_' <<<"$symbols" || true)
if [ -n "$others" ]; then
  echo "exports: $lib exports symbols outside the C API:" >&2
  echo "$others" >&2
  exit 1
fi
# Every function the header declares is exported.
header=$(dirname "$0")/../../include/decodelab/decodelab.h
missing=0
for fn in $(grep -o 'decodelab_[a-z_0-9]*(' "$header" | tr -d '(' | sort -u); do
  if ! grep -qx "$fn" <<<"$symbols"; then
    echo "exports: $fn is declared in decodelab.h but not exported" >&2
    missing=1
  fi
done
((missing == 0)) || exit 1
echo "exports: $(wc -l <<<"$symbols") symbols, all decodelab_*"
