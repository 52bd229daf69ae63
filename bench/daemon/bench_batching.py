#!/usr/bin/env python3
"""decodelabd with several generations on one model: what a lone request costs, and what batching
concurrent requests buys (docs/benchmarks.md, "decodelabd: lone requests and batching").

  lone   one greedy request at a time through daemons started with --workers 1, 2, 4, 8, against
         `decodelab generate` (the library in a fresh process: its first forward pass also maps
         the weights in) and `decodelab bench` (the library in a process warmed by one unmeasured
         run) on the same prompt and model; rounds interleave the CLI and every daemon, so
         drifting machine load hits all alike. "vs CLI" is the speed relative to `generate`.
  batch  CONCURRENT greedy requests of MAX_TOKENS tokens sent at once (one client each, so the
         daemon's fair queue hands each its own worker), against one request alone, in
         alternating rounds on one daemon (--workers = CONCURRENT). Aggregate throughput is
         generated tokens / wall time from the first send to the last result.
  samples  one request for N samples of 2 tokens each (generate_many) on an analytic table model,
         as an exactness study sends them: samples per second from send to the last result.
  ttft   time to first token of a short streamed request sent while another client's long prompt
         (PREFILL_TOKENS tokens, built from repeated text) is being prefilled, against the same
         short request on an idle daemon; and how long the long request took.

Run from the repository root after scripts/build and scripts/fetch-models:

  .venv/bin/python bench/daemon/bench_batching.py lone  [--rounds 5] [--max-tokens 64]
  .venv/bin/python bench/daemon/bench_batching.py batch [--rounds 3] [--concurrent 8] [--max-tokens 64]
  .venv/bin/python bench/daemon/bench_batching.py samples [--rounds 3] [--n 1000]
  .venv/bin/python bench/daemon/bench_batching.py ttft [--rounds 3] [--prefill-tokens 2000]

Prints a table and one JSON line with every figure. Timing figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import decodelab  # noqa: E402

PROMPT = "Write a Python function that checks whether a number is prime."
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> str:
    folder = os.environ.get("DECODELAB_MODELS", os.path.expanduser("~/.cache/decodelab/models"))
    path = os.path.join(folder, MODEL_FILE)
    if not os.path.exists(path):
        sys.exit(f"bench_batching: {path} is missing; run scripts/fetch-models")
    return path


class Daemon:
    def __init__(self, bindir: str, workers: int, spec: str, extra=()):
        self.dir = tempfile.mkdtemp(prefix="decodelab-bench-")
        self.endpoint = f"ipc://{self.dir}/d.sock"
        self.proc = subprocess.Popen(
            [os.path.join(bindir, "decodelabd"), "--bind", self.endpoint, "--workers", str(workers),
             "--load", f"m={spec}", "--log-level", "warn", *extra],
            stderr=subprocess.DEVNULL)
        self.client = decodelab.Client(self.endpoint, timeout=600)
        deadline = time.monotonic() + 120
        while True:
            try:
                c = decodelab.Client(self.endpoint, timeout=1)
                c.hello()
                c.close()
                break
            except decodelab.Timeout:
                c.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"decodelabd --workers {workers} did not start")

    def close(self):
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def request(client, max_tokens, seed=0):
    return client.generate(PROMPT, model="m", decoder="greedy", seed=seed, max_tokens=max_tokens,
                           stop_at_eos=False, logprobs=True)


def cli_run(bindir, spec, max_tokens):
    out = subprocess.run([os.path.join(bindir, "decodelab"), "generate", "--model", spec, "--decoder", "greedy",
                          "--prompt", PROMPT, "--max-tokens", str(max_tokens), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def lib_run(bindir, spec, max_tokens):
    """The library in a warm process: `decodelab bench` times a run after an unmeasured one."""
    out = subprocess.run([os.path.join(bindir, "decodelab"), "bench", "--model", spec, "--decoder", "greedy",
                          "--prompt", PROMPT, "--max-tokens", str(max_tokens), "--runs", "1", "--warmup", "1",
                          "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def lone(args, bindir, spec):
    workers = [int(w) for w in args.workers.split(",")]
    daemons = {w: Daemon(bindir, w, spec) for w in workers}
    cli_seconds, lib_seconds = [], []
    decode = {w: [] for w in workers}  # the decoder's own total (prefill + steps)
    total = {w: [] for w in workers}   # receipt to reply, as the daemon measures it
    wall = {w: [] for w in workers}    # as the client sees it
    reference = None
    try:
        for d in daemons.values():
            request(d.client, args.max_tokens)  # warm-up
        cli_run(bindir, spec, args.max_tokens)
        for _ in range(args.rounds):
            r = cli_run(bindir, spec, args.max_tokens)
            cli_seconds.append(r["seconds"])
            reference = reference or r["tokens"]
            lib_seconds.append(lib_run(bindir, spec, args.max_tokens)["seconds"])
            for w, d in daemons.items():
                t0 = time.perf_counter()
                res = request(d.client, args.max_tokens)
                wall[w].append(time.perf_counter() - t0)
                decode[w].append(res.stats["seconds"]["total"])
                total[w].append(res.timings["total_s"])
                if res.tokens != reference:
                    raise RuntimeError(f"--workers {w}: tokens differ from the CLI's")
    finally:
        for d in daemons.values():
            d.close()
    med = statistics.median
    cli = med(cli_seconds)
    print(f"lone greedy request, {args.max_tokens} tokens, {args.rounds} rounds (medians)")
    print(f"{'':>14} {'decode s':>9} {'tok/s':>7} {'vs CLI':>7} {'total_s':>8} {'client s':>9}")
    lib = med(lib_seconds)
    print(f"{'CLI generate':>14} {cli:9.3f} {args.max_tokens / cli:7.1f} {1.0:7.2f}")
    print(f"{'CLI bench':>14} {lib:9.3f} {args.max_tokens / lib:7.1f} {cli / lib:7.2f}")
    rows = {"cli_s": cli, "cli_bench_s": lib, "workers": {}}
    for w in workers:
        dm = med(decode[w])
        print(f"{'workers ' + str(w):>14} {dm:9.3f} {args.max_tokens / dm:7.1f} {cli / dm:7.2f} "
              f"{med(total[w]):8.3f} {med(wall[w]):9.3f}")
        rows["workers"][w] = {"decode_s": dm, "speed_vs_cli": cli / dm, "total_s": med(total[w]),
                              "client_s": med(wall[w])}
    print(json.dumps({"mode": "lone", "max_tokens": args.max_tokens, "rounds": args.rounds, **rows}))


def concurrent(endpoint, n, max_tokens):
    """n greedy requests at once, one client (thread) each; returns (wall seconds, results)."""
    results = [None] * n
    clients = [decodelab.Client(endpoint, timeout=600) for _ in range(n)]
    start = threading.Barrier(n + 1)

    def one(i):
        start.wait()
        results[i] = request(clients[i], max_tokens, seed=i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    for c in clients:
        c.close()
    return seconds, results


def batch(args, bindir, spec):
    d = Daemon(bindir, args.concurrent, spec)
    alone, together = [], []
    try:
        reference = request(d.client, args.max_tokens)  # warm-up, and the tokens every request must give
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            request(d.client, args.max_tokens)
            alone.append(time.perf_counter() - t0)
            seconds, results = concurrent(d.endpoint, args.concurrent, args.max_tokens)
            together.append(seconds)
            for r in results:
                if r.tokens != reference.tokens or r.logprobs != reference.logprobs:
                    raise RuntimeError("a batched request's tokens or logprobs differ from the lone request's")
        status = d.client.status()
    finally:
        d.close()
    med = statistics.median
    a, t = med(alone), med(together)
    single_rate = args.max_tokens / a
    batch_rate = args.concurrent * args.max_tokens / t
    print(f"{args.concurrent} concurrent greedy requests of {args.max_tokens} tokens vs one alone, "
          f"{args.rounds} rounds (medians)")
    print(f"  one alone:     {a:7.3f} s  {single_rate:7.1f} tok/s")
    print(f"  {args.concurrent} at once:     {t:7.3f} s  {batch_rate:7.1f} tok/s aggregate")
    print(f"  aggregate speedup: {batch_rate / single_rate:.2f}x")
    batching = {m["name"]: m.get("batching") for m in status["models"]}
    print(f"  batch sizes formed: {json.dumps(batching)}")
    print(json.dumps({"mode": "batch", "concurrent": args.concurrent, "max_tokens": args.max_tokens,
                      "rounds": args.rounds, "alone_s": a, "together_s": t, "single_tok_s": single_rate,
                      "aggregate_tok_s": batch_rate, "speedup": batch_rate / single_rate,
                      "batching": batching}))


def samples(args, bindir, spec):
    table = "table(vocab=64,order=2,seed=3)"
    d = Daemon(bindir, args.workers_many, table)
    rates = []
    try:
        d.client.generate_many("a b c", n=args.n, model="m", max_tokens=2, stop_at_eos=False)  # warm-up
        for r in range(args.rounds):
            t0 = time.perf_counter()
            results = d.client.generate_many("a b c", n=args.n, seed=r * args.n, model="m", max_tokens=2,
                                             stop_at_eos=False)
            seconds = time.perf_counter() - t0
            if len(results) != args.n or any(len(x.tokens) != 2 for x in results):
                raise RuntimeError("a sample is missing or short")
            rates.append(args.n / seconds)
    finally:
        d.close()
    med = statistics.median(rates)
    print(f"{args.n} two-token samples on {table} in one request (--workers {args.workers_many}), "
          f"{args.rounds} rounds: median {med:,.0f} samples/s (min {min(rates):,.0f}, max {max(rates):,.0f})")
    print(json.dumps({"mode": "samples", "n": args.n, "workers": args.workers_many, "rounds": args.rounds,
                      "samples_per_s": med, "all": rates}))


def first_token_s(client, prompt, max_tokens):
    """Seconds from send to the first streamed token, and to the result."""
    t0 = time.perf_counter()
    first = None
    with client.stream(prompt, model="m", decoder="greedy", max_tokens=max_tokens, stop_at_eos=False) as s:
        for _ in s:
            if first is None:
                first = time.perf_counter() - t0
    return first, time.perf_counter() - t0


def ttft(args, bindir, spec):
    d = Daemon(bindir, 2, spec)
    long_prompt = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 200)
    n_long = None
    idle, busy, long_s = [], [], []
    try:
        words = long_prompt.split()
        # Trim the long prompt to about --prefill-tokens tokens (SmolLM2: about 1.1 tokens a word).
        long_prompt = " ".join(words[: int(args.prefill_tokens / 1.1)])
        first_token_s(d.client, PROMPT, 4)  # warm-up
        other = decodelab.Client(d.endpoint, timeout=600)
        for _ in range(args.rounds):
            idle.append(first_token_s(d.client, PROMPT, 4)[0])
            done = {}

            def long_request():
                t0 = time.perf_counter()
                r = other.generate(long_prompt, model="m", decoder="greedy", max_tokens=1, stop_at_eos=False)
                done["s"] = time.perf_counter() - t0
                done["prompt_tokens"] = r.prompt_tokens

            t = threading.Thread(target=long_request)
            t.start()
            time.sleep(args.delay)  # the long prefill is under way
            busy.append(first_token_s(d.client, PROMPT, 4)[0])
            t.join()
            long_s.append(done["s"])
            n_long = done["prompt_tokens"]
        other.close()
    finally:
        d.close()
    med = statistics.median
    print(f"time to first token of a short request, {args.rounds} rounds (medians), prefill chunk = daemon default")
    print(f"  idle daemon:                               {med(idle):7.3f} s")
    print(f"  during another client's {n_long}-token prefill: {med(busy):7.3f} s (max {max(busy):.3f})")
    print(f"  the long request itself:                   {med(long_s):7.3f} s")
    print(json.dumps({"mode": "ttft", "prefill_tokens": n_long, "rounds": args.rounds, "idle_s": med(idle),
                      "during_prefill_s": med(busy), "during_prefill_max_s": max(busy), "long_s": med(long_s)}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["lone", "batch", "samples", "ttft"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--workers", default="1,2,4,8", help="lone: the daemons' worker counts")
    p.add_argument("--concurrent", type=int, default=8, help="batch: requests sent at once")
    p.add_argument("--model", default=None, help="model spec (default: SmolLM2 from $DECODELAB_MODELS)")
    p.add_argument("--n", type=int, default=1000, help="samples: samples per request")
    p.add_argument("--workers-many", type=int, default=8, help="samples: the daemon's workers")
    p.add_argument("--prefill-tokens", type=int, default=2000, help="ttft: the long prompt's length")
    p.add_argument("--delay", type=float, default=0.5, help="ttft: seconds between the long and the short request")
    p.add_argument("--bindir", default=os.path.join(ROOT, "build", "bin"))
    args = p.parse_args()
    spec = args.model or f"gguf(path={model_path()})"
    modes = {"lone": lone, "batch": batch, "samples": samples, "ttft": ttft}
    modes[args.mode](args, args.bindir, spec)


if __name__ == "__main__":
    main()
