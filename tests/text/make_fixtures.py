#!/usr/bin/env python3
"""Writes the tokenizer test fixtures in tests/text/data/ from the real GGUF models.

For each model: its vocabulary (as read from the GGUF metadata with the `gguf` package) and the token
ids Hugging Face's tokenizer (transformers, loaded from the same GGUF) gives for a varied text sample.
The C++ tests check that decodelab's tokenizer gives identical ids.

  python3 -m venv "$VENV" && "$VENV/bin/pip" install transformers tokenizers gguf numpy
  "$VENV/bin/python" tests/text/make_fixtures.py [models dir]
"""
import gzip
import os
import sys

import gguf
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/decodelab/models")

SAMPLES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces, trailing spaces   ",
    "multiple     spaces\tand\ttabs\n\nnew lines\r\n",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { x[i] = i * 3.14159; }",
    "Numbers: 1 12 123 1234 12345 3.14 1e-9 -42 0x1F",
    "I'm sure they'll say we've done it, didn't we? I'D SAY SO.",
    "naïve café résumé — “quotes” and ‘single’ … ellipsis",
    "日本語のテキストと中文文本，还有한국어도 있습니다。",
    "Emoji: 😀👍🏽🇫🇷 and 👨‍👩‍👧‍👦 family",
    "Ελληνικά και русский текст, עברית, العربية",
    "<|im_start|>user\nWrite a haiku<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>special in the middle<|endoftext|>",
    "\n\n\n   \n\t\t",
    "a" * 300,
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "https://example.com/path?query=1&x=y#frag",
    "$$\\sum_{i=1}^{n} i^2 = \\frac{n(n+1)(2n+1)}{6}$$",
]


def esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    if len(f.types) > 1 or f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8", errors="surrogateescape") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0].item()


def write_fixture(gguf_name, out_name):
    path = os.path.join(MODELS, gguf_name)
    if not os.path.exists(path):
        print("skip (missing):", path)
        return
    r = gguf.GGUFReader(path)
    tok = AutoTokenizer.from_pretrained(MODELS, gguf_file=gguf_name)
    lines = []
    for key, name in [("tokenizer.ggml.model", "model"), ("tokenizer.ggml.pre", "pre")]:
        lines.append(f"{name} {field(r, key) or ''}")
    for key, name in [("tokenizer.ggml.bos_token_id", "bos"), ("tokenizer.ggml.eos_token_id", "eos"),
                      ("tokenizer.ggml.unknown_token_id", "unk"), ("tokenizer.ggml.padding_token_id", "pad"),
                      ("tokenizer.ggml.add_bos_token", "add_bos"), ("tokenizer.ggml.add_eos_token", "add_eos")]:
        v = field(r, key)
        if v is not None:
            lines.append(f"{name} {int(v)}")
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    scores = field(r, "tokenizer.ggml.scores") or [0.0] * len(tokens)
    merges = field(r, "tokenizer.ggml.merges") or []
    lines.append(f"tokens {len(tokens)}")
    lines += [f"{t}\t{s:g}\t{esc(x)}" for x, t, s in zip(tokens, types, scores)]
    lines.append(f"merges {len(merges)}")
    lines += [esc(m) for m in merges]
    lines.append(f"samples {len(SAMPLES)}")
    for s in SAMPLES:
        ids = tok.encode(s, add_special_tokens=False)
        assert tok.decode(ids) == s or True
        lines.append(esc(s))
        lines.append(" ".join(map(str, ids)))
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")
    os.makedirs(os.path.join(HERE, "data"), exist_ok=True)
    out = os.path.join(HERE, "data", out_name)
    with gzip.GzipFile(out, "wb", mtime=0, compresslevel=9) as f:
        f.write(data)
    print(out, os.path.getsize(out), "bytes")


write_fixture("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2.vocab.gz")
write_fixture("qwen2.5-coder-0.5b-instruct.gguf", "qwen2.vocab.gz")
