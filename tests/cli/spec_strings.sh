#!/usr/bin/env bash
# Spec strings through the decodelab CLI: sampler chains of several samplers as a --param value and
# inside a --decoder spec, the chain example `decodelab list` prints, and clear errors for
# unbalanced parentheses. Usage: spec_strings.sh path/to/decodelab
set -u
bin=$1
model='table(vocab=64,order=2,seed=3,sharpness=1)'
failures=0
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# run NAME ARGS...: runs decodelab, keeps stdout in $out, stderr in $err and the exit code in $rc.
run() {
  local name=$1
  shift
  out=$("$bin" "$@" 2>"$errfile") && rc=0 || rc=$?
  err=$(cat "$errfile")
  if [ "$rc" -ne 0 ] && [ "$name" != expect-error ]; then fail "$name: exit $rc: $err"; fi
}

tokens_of() { sed -n 's/.*"tokens":\[\([^]]*\)\].*/\1/p' <<<"$1"; }

# A chain of two samplers as the value of --param gives what the same samplers as plain parameters give.
run chain-param generate --model "$model" --json --seed 7 --max-tokens 12 --param "chain=top_k(k=3),temperature(t=0.6)"
chain_out=$out
chain_tokens=$(tokens_of "$out")
run plain-params generate --model "$model" --json --seed 7 --max-tokens 12 --param "top_k=3,temperature=0.6"
plain_tokens=$(tokens_of "$out")
[ -n "$chain_tokens" ] || fail "chain-param: no tokens in: $chain_out"
[ "$chain_tokens" = "$plain_tokens" ] || fail "chain=top_k(k=3),temperature(t=0.6) gave [$chain_tokens], top_k=3,temperature=0.6 gave [$plain_tokens]"

# The same chain inside a decoder spec (bench --decoder), beside a second decoder.
run chain-decoder bench --model "$model" --runs 1 --warmup 0 --max-tokens 4 \
  --decoder "sample(chain=top_k(k=3),temperature(t=0.6))" --decoder greedy
grep -qF 'sample(chain=top_k(k=3),temperature(t=0.6))' <<<"$out" || fail "bench does not report the chained decoder: $out"

# The chain example `decodelab list samplers` prints runs as printed.
run list list samplers
example=$(sed -n 's/.*--param "\([^"]*\)".*/\1/p' <<<"$out" | head -n 1)
if [ -z "$example" ]; then
  fail "decodelab list samplers prints no --param \"chain=...\" example: $out"
else
  run list-example generate --model "$model" --max-tokens 4 --param "$example"
fi

# Unbalanced parentheses: exit code 2 and a message that says where.
run expect-error generate --model "$model" --max-tokens 4 --param "chain=top_k(k=3,temperature(t=0.6)"
[ "$rc" -eq 2 ] || fail "unclosed '(' in --param: exit $rc, expected 2"
grep -qF "the '(' at position 11 is never closed" <<<"$err" || fail "unclosed '(' in --param: message: $err"
run expect-error bench --model "$model" --runs 1 --warmup 0 --max-tokens 4 --decoder "sample(chain=top_k(k=3)),temperature(t=0.6))"
[ "$rc" -eq 2 ] || fail "stray ')' in --decoder: exit $rc, expected 2"
grep -qF "has no matching '('" <<<"$err" || fail "stray ')' in --decoder: message: $err"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "spec strings: all checks passed"
