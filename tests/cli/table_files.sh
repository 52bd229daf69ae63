#!/usr/bin/env bash
# table(file=...) through the decodelab CLI: the example pair in examples/tables as target and
# draft of speculative decoders, and the errors a user sees for a missing or wrong table file.
# Usage: table_files.sh path/to/decodelab path/to/examples/tables
set -u
bin=$1
tables=$2
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
tokens_of() { sed -n 's/.*"tokens":\[\([^]]*\)\].*/\1/p' <<<"$1"; }

target="table(file=$tables/target.json)"
draft="table(file=$tables/draft.json)"

# spectr and sd over the pair: after "the" the target never gives "the" (id 0), and " dog" (id 2),
# which the draft never proposes, still comes (from the residual): 40% of the time under the target.
dogs=0
for seed in $(seq 0 39); do
  for decoder in spectr sd; do
    out=$("$bin" generate --model "$target" --draft "$draft" --decoder "$decoder" --prompt "the" --seed "$seed" \
      --max-tokens 6 --json 2>"$tmp/err") || {
      fail "$decoder seed $seed: $(cat "$tmp/err")"
      continue
    }
    tokens=$(tokens_of "$out")
    [ -n "$tokens" ] || fail "$decoder seed $seed: no tokens in: $out"
    first=${tokens%%,*}
    [ "$first" != 0 ] || fail "$decoder seed $seed: \"the\" after \"the\", which the target forbids: [$tokens]"
    [ "$first" = 2 ] && dogs=$((dogs + 1))
  done
done
# 80 runs at p = 0.4: 32 expected; fewer than 12 has probability < 1e-6.
[ "$dogs" -ge 12 ] || fail "\" dog\" came first in only $dogs of 80 runs (expected about 32)"

# Errors name the file and what is wrong.
expect_error() {
  local name=$1 needle=$2
  shift 2
  if "$bin" generate "$@" --max-tokens 2 >"$tmp/out" 2>"$tmp/err"; then
    fail "$name: succeeded"
  elif ! grep -qF -- "$needle" "$tmp/err"; then
    fail "$name: error does not mention '$needle': $(cat "$tmp/err")"
  fi
}
expect_error missing-file "$tmp/none.json" --model "table(file=$tmp/none.json)"
printf '{"vocab": 2, "contexts": [{"context": [], "probs": [0.6, 0.6]}], "default": "uniform"}' >"$tmp/sum.json"
expect_error bad-sum "contexts[0].probs sums to 1.2" --model "table(file=$tmp/sum.json)"
printf '{"vocab": 2, "contexts": [' >"$tmp/cut.json"
expect_error bad-json "unexpected end" --model "table(file=$tmp/cut.json)"
printf '{"vocab": 7, "contexts": [], "default": "uniform"}' >"$tmp/seven.json"
expect_error vocab-mismatch "vocabulary" --model "$target" --draft "table(file=$tmp/seven.json)" --decoder sd
expect_error mixed-params "file= excludes vocab=" --model "table(file=$tables/target.json,vocab=6)"

if [ "$failures" -ne 0 ]; then
  echo "table_files: $failures failures" >&2
  exit 1
fi
echo "table_files: ok ($dogs of 80 first tokens were \" dog\")"
