#!/usr/bin/env python3
"""The anchor for decodelabd's batching figures: llama.cpp's own server with continuous batching
(`llama-server -np N -cb`) on the same model and machine, measured the way bench_batching.py's
`batch` mode measures decodelabd.

  CONCURRENT greedy completions of MAX_TOKENS tokens sent at once (one HTTP connection each),
  against one completion alone, in alternating rounds on one server; aggregate throughput is
  generated tokens / wall time from the first send to the last reply. Prompt caching is off
  (cache_prompt: false) so every request prefills its prompt, as every decodelabd request does.

Build llama-server from the llama.cpp tree that llama-cpp-python's source release vendors
(configure with -DLLAMA_BUILD_SERVER=ON), then, from the repository root:

  .venv/bin/python bench/daemon/bench_llama_server.py --server PATH/llama-server \\
      [--model FILE] [--concurrent 8] [--max-tokens 64] [--rounds 3] [--threads 2]

Run bench_batching.py's `batch` mode right before or after it (same load) and compare the speedups.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

PROMPT = "Write a Python function that checks whether a number is prime."
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completion(port: int, max_tokens: int) -> dict:
    body = json.dumps({"prompt": PROMPT, "n_predict": max_tokens, "temperature": 0, "top_k": 1,
                       "cache_prompt": False, "ignore_eos": True}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/completion", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def concurrent(port: int, n: int, max_tokens: int):
    replies = [None] * n
    start = threading.Barrier(n + 1)

    def one(i):
        start.wait()
        replies[i] = completion(port, max_tokens)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, replies


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="the llama-server executable")
    p.add_argument("--model", default=None, help=f"GGUF file (default: {MODEL_FILE} in $DECODELAB_MODELS)")
    p.add_argument("--concurrent", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    model = args.model or os.path.join(
        os.environ.get("DECODELAB_MODELS", os.path.expanduser("~/.cache/decodelab/models")), MODEL_FILE)
    if not os.path.exists(model):
        sys.exit(f"bench_llama_server: {model} is missing; run scripts/fetch-models")
    if not os.access(args.server, os.X_OK):
        sys.exit(f"bench_llama_server: {args.server} is not an executable")
    port = free_port()
    ctx = args.concurrent * 512  # each slot gets 512 tokens of context: prompt + max_tokens fit
    proc = subprocess.Popen([args.server, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-t",
                             str(args.threads), "-np", str(args.concurrent), "-cb", "-c", str(ctx)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # up to 60 s to load
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.1)
        else:
            sys.exit("bench_llama_server: the server did not become healthy within 60 s")
        completion(port, args.max_tokens)  # warm-up
        alone, together = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            r = completion(port, args.max_tokens)
            alone.append(time.perf_counter() - t0)
            if r.get("tokens_predicted") != args.max_tokens:
                raise RuntimeError(f"a completion gave {r.get('tokens_predicted')} tokens, not {args.max_tokens}")
            seconds, _ = concurrent(port, args.concurrent, args.max_tokens)
            together.append(seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    med = statistics.median
    a, t = med(alone), med(together)
    single = args.max_tokens / a
    aggregate = args.concurrent * args.max_tokens / t
    print(f"llama-server -np {args.concurrent} -cb, {args.threads} threads: {args.concurrent} concurrent greedy "
          f"completions of {args.max_tokens} tokens vs one alone, {args.rounds} rounds (medians)")
    print(f"  one alone:  {a:7.3f} s  {single:7.1f} tok/s")
    print(f"  {args.concurrent} at once:  {t:7.3f} s  {aggregate:7.1f} tok/s aggregate")
    print(f"  aggregate speedup: {aggregate / single:.2f}x")
    print(json.dumps({"mode": "llama-server", "concurrent": args.concurrent, "max_tokens": args.max_tokens,
                      "rounds": args.rounds, "alone_s": a, "together_s": t, "single_tok_s": single,
                      "aggregate_tok_s": aggregate, "speedup": aggregate / single}))


if __name__ == "__main__":
    main()
