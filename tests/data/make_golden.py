#!/usr/bin/env python3
"""Golden fixtures for test_model: tiny random-weight Llama and Qwen2 models from HF transformers,
written as F32 GGUF files, with transformers' logits for fixed token sequences stored in the same
file (tensor `golden.logits`, metadata `golden.tokens` / `golden.lengths`).

Run with a Python virtual environment $VENV that has numpy gguf torch transformers (a separate one,
not the project's .venv: torch is large):
  python3 -m venv "$VENV" && "$VENV/bin/pip" install numpy gguf torch transformers
  "$VENV/bin/python" tests/data/make_golden.py
Writes tests/data/tiny-llama.gguf and tests/data/tiny-qwen2.gguf.
"""
import os

import numpy as np
import torch
import gguf
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
VOCAB, HIDDEN, LAYERS, HEADS, KV_HEADS, FF = 256, 64, 2, 4, 2, 160
THETA = {"llama": 10000.0, "qwen2": 1000000.0}
SEQUENCES = [[1, 17, 200, 5, 99, 99, 3, 255, 0, 42, 7, 128], [2, 250, 31]]


def llama_rope_permute(w, n_head):
    """HF stores q/k for half-split (neox) rotation; llama.cpp's llama GGUFs reorder the rows of
    each head so that rotation pairs are adjacent (2i, 2i+1). Row r = i*2 + j of a head's block
    comes from HF row j*(d/2) + i."""
    out_dim = w.shape[0]
    d = out_dim // n_head
    return w.reshape(n_head, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build(arch):
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  num_key_value_heads=KV_HEADS, intermediate_size=FF, max_position_embeddings=256,
                  rms_norm_eps=1e-6, initializer_range=0.15, hidden_act="silu")
    torch.manual_seed(1 if arch == "llama" else 2)
    if arch == "llama":
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": THETA[arch]}, tie_word_embeddings=False, **common)
        model = LlamaForCausalLM(cfg)
    else:
        cfg = Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": THETA[arch]}, tie_word_embeddings=True, **common)
        model = Qwen2ForCausalLM(cfg)
    # Norm weights start at 1; randomize them so a missing norm multiply shows up.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            if "bias" in name:
                p.copy_(0.3 * torch.randn_like(p))
    model = model.float().eval()
    return cfg, model


def write(arch, cfg, model):
    path = os.path.join(here, f"tiny-{arch}.gguf")
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch}")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_rope_freq_base(THETA[arch])
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_file_type(0)
    # Minimal tokenizer metadata: token strings and special ids (no tokenizer model: tests use ids).
    w.add_token_list([f"<t{i}>" for i in range(VOCAB)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        w.add_tensor("output.weight", sd["lm_head.weight"])
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = llama_rope_permute(q, HEADS), llama_rope_permute(k, KV_HEADS)
        b = f"blk.{l}."
        w.add_tensor(b + "attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(b + "attn_q.weight", np.ascontiguousarray(q))
        w.add_tensor(b + "attn_k.weight", np.ascontiguousarray(k))
        w.add_tensor(b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        if arch == "qwen2":
            w.add_tensor(b + "attn_q.bias", sd[p + "self_attn.q_proj.bias"])
            w.add_tensor(b + "attn_k.bias", sd[p + "self_attn.k_proj.bias"])
            w.add_tensor(b + "attn_v.bias", sd[p + "self_attn.v_proj.bias"])
        w.add_tensor(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])

    logits = []
    with torch.no_grad():
        for seq in SEQUENCES:
            out = model(torch.tensor([seq])).logits[0].numpy().astype(np.float32)
            logits.append(out)
    w.add_array("golden.tokens", [t for s in SEQUENCES for t in s])
    w.add_array("golden.lengths", [len(s) for s in SEQUENCES])
    w.add_tensor("golden.logits", np.concatenate(logits, axis=0))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(path, "max |logit|", float(np.abs(np.concatenate(logits)).max()))


for arch in ("llama", "qwen2"):
    cfg, model = build(arch)
    write(arch, cfg, model)
