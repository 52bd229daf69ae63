#!/usr/bin/env python3
"""HF transformers + PyTorch baseline for bench_cuda: the same Qwen2.5 shapes with random fp16
weights on the same GPU, batch-1 greedy decode tokens/s after a prefill of `context` tokens, and
the time of one forward over T = 1, 4, 16, 64 new tokens on that prefix (HF has no token-tree
input; a causal chain of T tokens costs the same GEMMs and nearly the same attention).

  python3 scripts/gpu-bench-hf.py --shapes 0.5b,1.5b,7b --context 512 --steps 128 --out hf.jsonl

Modes: eager (dynamic cache), and static cache + torch.compile(mode="reduce-overhead") when it
compiles (--compile-shapes; compilation can take minutes, so it is opt-in per shape).
"""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

SHAPES = {  # hidden, layers, heads, kv heads, intermediate, vocab, tied embeddings
    "0.5b": (896, 24, 14, 2, 4864, 151936, True),
    "1.5b": (1536, 28, 12, 2, 8960, 151936, True),
    "7b": (3584, 28, 28, 4, 18944, 152064, False),
}


def make_model(shape, context):
    h, layers, heads, kv, inter, vocab, tied = SHAPES[shape]
    config = Qwen2Config(vocab_size=vocab, hidden_size=h, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=32768,
                         tie_word_embeddings=tied, rms_norm_eps=1e-6)
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config)  # random init on the device, no host copy
    torch.set_default_dtype(torch.float32)
    return model.eval()


def timed(fn, reps=1):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


@torch.inference_mode()
def decode_rate(model, prompt, steps, **kw):
    def gen(n):
        return model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, **kw)
    gen(steps + 1)  # warm-up (and compilation)
    gen(steps + 1)
    full = timed(lambda: gen(steps + 1))
    first = timed(lambda: gen(1))
    return steps / max(full - first, 1e-9)


@torch.inference_mode()
def verify_times(model, prompt):
    from transformers import DynamicCache
    cache = DynamicCache()
    model(prompt, past_key_values=cache, use_cache=True)
    L = prompt.shape[1]
    out = {}
    for T in (1, 4, 16, 64):
        ids = torch.randint(0, model.config.vocab_size, (1, T), device="cuda")
        times = []
        for r in range(23):
            t = timed(lambda: model(ids, past_key_values=cache, use_cache=True))
            cache.crop(L)
            if r >= 3:
                times.append(t)
        out[str(T)] = statistics.median(times) * 1e3
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="0.5b,1.5b,7b")
    ap.add_argument("--compile-shapes", default="0.5b")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    rows = []
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name()}")
    for shape in a.shapes.split(","):
        model = make_model(shape, a.context)
        prompt = torch.randint(0, model.config.vocab_size, (1, a.context), device="cuda")
        row = {"engine": "hf-eager", "shape": shape, "dtype": "f16", "context": a.context,
               "decode_tokens_per_s": decode_rate(model, prompt, a.steps), "verify_ms": verify_times(model, prompt)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if shape in a.compile_shapes.split(","):
            try:
                model.generation_config.cache_implementation = "static"
                model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
                row = {"engine": "hf-static-compile", "shape": shape, "dtype": "f16", "context": a.context,
                       "decode_tokens_per_s": decode_rate(model, prompt, a.steps)}
            except Exception as e:  # report, do not hide: the eager row stands
                row = {"engine": "hf-static-compile", "shape": shape, "error": repr(e)[:500]}
            rows.append(row)
            print(json.dumps(row), flush=True)
        del model
        torch.cuda.empty_cache()
    if a.out:
        with open(a.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
