"""Writes the GGUF fuzzer's seeds (fuzz/gguf/corpus/): tiny but complete llama and qwen2 models,
a few KB each, with the tensor types the runtime decodes and a byte-level BPE vocabulary, so the
fuzzer starts from files that get past the reader into the model loader, tokenizer and forward.
Needs the PyPI `gguf` and `numpy` packages:  python3 fuzz/gguf/make_corpus.py
"""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)
rng = np.random.default_rng(1)


def tensor(w, name, rows, cols, qtype):
    data = rng.standard_normal((rows, cols)).astype(np.float32) * 0.1
    if qtype == T.F32:
        w.add_tensor(name, data)
    elif qtype in (T.Q4_K, T.Q6_K):
        # The gguf package has no K-quant quantizer: random blocks with a small, finite scale.
        size, at = (144, (0, 2)) if qtype == T.Q4_K else (210, (208,))
        blocks = rng.integers(0, 256, (rows, cols // 256, size), dtype=np.uint8)
        for o in at:
            blocks[:, :, o:o + 2] = np.frombuffer(np.float16(0.001).tobytes(), dtype=np.uint8)
        w.add_tensor(name, blocks.reshape(rows, -1), raw_dtype=qtype)
    else:
        w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)


def model(path, arch, qtype, vocab_style):
    dim, hidden, heads, kv, vocab = 32, 64, 4, 2, 16
    if qtype in (T.Q4_K, T.Q6_K):
        dim, hidden = 256, 256
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(1)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(hidden)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_context_length(64)
    tokens = [bytes([c]).decode("latin-1") for c in b"abcdefgh "] + ["ab", "cd", "abcd", "<s>", "</s>", "\u0120a", "\u010a"]
    w.add_tokenizer_model(vocab_style)
    if vocab_style == "gpt2":
        w.add_tokenizer_pre("qwen2" if arch == "qwen2" else "smollm")
        w.add_token_merges(["a b", "c d", "ab cd"])
    else:
        w.add_token_scores([float(-i) for i in range(vocab)])
    w.add_token_list(tokens[:vocab])
    w.add_token_types([1] * (vocab - 2) + [3, 3])
    w.add_bos_token_id(vocab - 2)
    w.add_eos_token_id(vocab - 1)
    head_dim = dim // heads
    tensor(w, "token_embd.weight", vocab, dim, T.Q8_0 if qtype not in (T.Q4_K, T.Q6_K) else T.F32)
    w.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
    p = "blk.0."
    w.add_tensor(p + "attn_norm.weight", np.ones(dim, dtype=np.float32))
    w.add_tensor(p + "ffn_norm.weight", np.ones(dim, dtype=np.float32))
    tensor(w, p + "attn_q.weight", heads * head_dim, dim, qtype)
    tensor(w, p + "attn_k.weight", kv * head_dim, dim, qtype)
    tensor(w, p + "attn_v.weight", kv * head_dim, dim, qtype)
    tensor(w, p + "attn_output.weight", dim, heads * head_dim, qtype)
    tensor(w, p + "ffn_gate.weight", hidden, dim, qtype)
    tensor(w, p + "ffn_up.weight", hidden, dim, qtype)
    tensor(w, p + "ffn_down.weight", dim, hidden, qtype)
    if arch == "qwen2":
        for n, rows in (("q", heads * head_dim), ("k", kv * head_dim), ("v", kv * head_dim)):
            w.add_tensor(p + f"attn_{n}.bias", np.zeros(rows, dtype=np.float32))
    else:
        tensor(w, "output.weight", vocab, dim, T.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


model(os.path.join(here, "llama-q4_0.gguf"), "llama", T.Q4_0, "gpt2")
model(os.path.join(here, "llama-q5_0-spm.gguf"), "llama", T.Q5_0, "llama")
model(os.path.join(here, "qwen2-q8_0.gguf"), "qwen2", T.Q8_0, "gpt2")
# K-quant models need 256-wide rows (~250 KB), too large for quick fuzzing: write them with
# `python3 fuzz/gguf/make_corpus.py --k-quants` for a longer run.
if "--k-quants" in os.sys.argv:
    model(os.path.join(here, "qwen2-q4_k.gguf"), "qwen2", T.Q4_K, "gpt2")
    model(os.path.join(here, "llama-q6_k.gguf"), "llama", T.Q6_K, "gpt2")
