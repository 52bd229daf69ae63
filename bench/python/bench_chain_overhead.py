"""What a sampler chain costs through Python, against the same chain called from C++ and through
the C ABI: top_k(k=40),top_p(p=0.95),temperature(t=0.8) on a 151,936-token vocabulary (Qwen2.5's).

Runs build/bin/bench_capi for the C++ and C figures, then times decodelab_native.Chain.apply in
this process on the same logits (3 x standard normal, handed to bench_capi through
DECODELAB_BENCH_LOGITS), each call on a fresh copy of the logits (apply overwrites its input, as the C benchmark's loop copies too). CPU time, median of
--reps repetitions of --calls calls; everything in one run, so the ratios compare like with like.

    PYTHONPATH=build/python .venv/bin/python bench/python/bench_chain_overhead.py [--reps 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import decodelab_native as dn

SPEC = "top_k(k=40),top_p(p=0.95),temperature(t=0.8)"
VOCAB = 151936
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def native_figures(bench_capi, reps, logits):
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        logits.tofile(f.name)
        out = run_bench(bench_capi, reps, f.name)
    figures = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        figures[b["run_name"].split("/")[0]] = b["cpu_time"] * scale
    return figures


def run_bench(bench_capi, reps, logits_path):
    return subprocess.run([bench_capi, "--benchmark_filter=large_topk_topp_temp", "--benchmark_format=json",
                          f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true"],
                          check=True, capture_output=True, text=True,
                          env={**os.environ, "DECODELAB_BENCH_LOGITS": logits_path}).stdout


def python_seconds(reps, calls, logits):
    work = np.empty_like(logits)
    chain = dn.Chain(SPEC)
    for _ in range(3):  # warm-up
        np.copyto(work, logits)
        chain.apply(work)
    times = []
    for _ in range(reps):
        start = time.process_time()
        for _ in range(calls):
            np.copyto(work, logits)
            chain.apply(work)
        times.append((time.process_time() - start) / calls)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--bench-capi", default=os.path.join(ROOT, "build", "bin", "bench_capi"))
    args = parser.parse_args()
    if not os.path.exists(args.bench_capi):
        sys.exit(f"{args.bench_capi} not found: build with benchmarks (scripts/build)")
    logits = (3.0 * np.random.default_rng(1).standard_normal(VOCAB)).astype(np.float32)
    native = native_figures(args.bench_capi, args.reps, logits)
    py = python_seconds(args.reps, args.calls, logits)
    cpp = native["apply_cpp"]
    print(f"chain {SPEC}, vocabulary {VOCAB}; CPU time per call, median of {args.reps}")
    rows = [("C++ (Candidates::from_logits + apply)", cpp), ("C ABI, dense logits in place", native["apply_c"]),
            ("C ABI, candidate array in place", native["apply_candidates_c"]),
            ("Python Chain.apply (numpy, in place)", py)]
    for name, seconds in rows:
        print(f"  {name:40s} {seconds * 1e3:8.3f} ms   {seconds / cpp:5.2f}x C++")


if __name__ == "__main__":
    main()
