#!/usr/bin/env bash
# SIGINT and SIGTERM stop `decodelab generate` in the middle of a long prompt's prefill: it prints
# the (empty) generation and its stats with stop reason "cancelled" and the signal, and exits with
# 128 + the signal number. (They used to end the process at once, printing nothing.)
#
# The prefill is long on an analytic model: each prompt token's row of logits is `vocab` Philox
# normals, so 40000 tokens at vocab 8192 take seconds, while a chunk of 16 tokens takes a few
# milliseconds. The checks read what the run printed (the stop reason, fewer target calls than a
# whole prefill takes), never how long anything took. Usage: interrupt.sh path/to/decodelab
set -u
bin=$1
model='table(vocab=8192,order=2,seed=1,sharpness=2)'
prompt=$(awk 'BEGIN { for (i = 0; i < 40000; i++) printf "%s ", substr("abcdefghijklmnopqrstuvwxyz", (i * 7 + int(i / 5)) % 26 + 1, 1) }')
whole_prefill_calls=2500 # 40000 tokens / 16 per chunk
failures=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

for sig in INT TERM; do
  out=$dir/$sig.out
  # Job control: without it a background job of a script starts with SIGINT ignored, and a program
  # keeps a signal it was started ignoring ignored.
  set -m
  "$bin" generate --model "$model" --prompt "$prompt" --prefill-chunk 16 --max-tokens 1000000 >"$out" 2>"$dir/err" &
  pid=$!
  set +m
  # The prompt is printed just before generation starts; give it a moment to be prefilling.
  for ((i = 0; i < 600; i++)); do
    [ -s "$out" ] && break
    sleep 0.1
  done
  sleep 0.3
  kill -"$sig" "$pid"
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    fail "SIG$sig: decodelab generate still runs 60 s after the signal"
  fi
  wait "$pid"
  rc=$?
  expected=$((128 + $(kill -l "$sig")))
  [ "$rc" -eq "$expected" ] || fail "SIG$sig: exit $rc, expected $expected"
  summary=$(grep -a '^\[sample\]' "$out")
  if [ -z "$summary" ]; then
    fail "SIG$sig: no summary line; stdout ends: $(tail -c 300 "$out"); stderr: $(cat "$dir/err")"
    continue
  fi
  grep -qF "stop: cancelled (SIG$sig)" <<<"$summary" || fail "SIG$sig: summary: $summary"
  grep -qE '^\[sample\] 0 tokens,' <<<"$summary" || fail "SIG$sig: tokens were generated: $summary"
  calls=$(sed -n 's/.* \([0-9][0-9]*\) target calls.*/\1/p' <<<"$summary")
  [ -n "$calls" ] && [ "$calls" -lt "$whole_prefill_calls" ] ||
    fail "SIG$sig: $calls target calls, the whole prefill ($whole_prefill_calls) ran before the stop: $summary"
done

# A chunk size below 1 is refused, naming the option.
"$bin" generate --model "$model" --prompt "a b c" --prefill-chunk 0 >/dev/null 2>"$dir/err" && rc=0 || rc=$?
[ "$rc" -eq 2 ] || fail "--prefill-chunk 0: exit $rc, expected 2"
grep -qF -- "--prefill-chunk" "$dir/err" || fail "--prefill-chunk 0: message: $(cat "$dir/err")"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "interrupt: all checks passed"
