"""What a model behind Python callbacks costs: spectr over SmolLM2 (target) and a table draft,
natively and with both models forwarded through Python objects (decodelab_native.Model.from_python
over the same loaded models), alternating, same seeds. Prints wall seconds per run and the ratio.

    PYTHONPATH=build/python .venv/bin/python bench/python/bench_python_model.py [--runs 3] [--tokens 32]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python", "tests"))
import decodelab_native as dn  # noqa: E402
from test_models import SMOLLM2, Forwarding  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if SMOLLM2 is None:
        sys.exit("SmolLM2-135M-Instruct.Q4_1.gguf is not in the models cache")
    target = dn.Model(f"gguf(path={SMOLLM2},threads={args.threads})")
    draft = dn.Model(f"table(vocab={target.vocab_size},order=1,seed=3,sharpness=1)")
    py_target = dn.Model.from_python(Forwarding(target))
    py_draft = dn.Model.from_python(Forwarding(draft))
    prompt = target.tokenize("Once upon a time, in a small village,", add_special=True)
    decoder = "spectr(k=2,L=3,temperature=0.7)"
    native_s, python_s = [], []
    for run in range(args.runs):
        for models, out in (((target, draft), native_s), ((py_target, py_draft), python_s)):
            start = time.perf_counter()
            tokens, stats = dn.generate(decoder, models[0], prompt, draft=models[1], seed=run,
                                        max_new_tokens=args.tokens, stop_at_eos=False)
            out.append(time.perf_counter() - start)
        print(f"run {run}: native {native_s[-1]:.3f} s, through Python {python_s[-1]:.3f} s, "
              f"target calls {stats['target_calls']}")
    ratio = np.median(python_s) / np.median(native_s)
    print(f"median: native {np.median(native_s):.3f} s, through Python {np.median(python_s):.3f} s, ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
