#!/usr/bin/env python3
"""SmolLM2 fixture: HF transformers loads the same Q4_1 GGUF (dequantized to fp32) and records the
top-10 logits at every position of a fixed prompt plus 32 greedy tokens. test_model compares when
the model file is present.

  "$VENV/bin/python" tests/data/make_smollm2_golden.py [models_dir]   ($VENV: see make_golden.py)
Writes tests/data/smollm2-golden.gguf (metadata + small tensors only, no weights).
"""
import os
import sys

import numpy as np
import torch
import gguf
from transformers import AutoModelForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
models = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/decodelab/models")
# (model file, fixture name, prompt token ids). Set QWEN=1 to make the Qwen2.5-Coder-0.5B fixture.
if os.environ.get("QWEN"):
    FILE, OUT = "qwen2.5-coder-0.5b-instruct.gguf", "qwen05-golden.gguf"
    PROMPT = [151644, 872, 198, 7985, 264, 10135, 729, 429, 4675, 279, 5802, 13, 151645, 198, 151644, 77091, 198]
else:
    FILE, OUT = "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-golden.gguf"
    PROMPT = [1, 504, 3575, 282, 4649, 314, 2, 1, 18, 19, 20, 476, 1078, 30, 216, 100]
TOPK, GREEDY = 10, 32

model = AutoModelForCausalLM.from_pretrained(models, gguf_file=FILE, torch_dtype=torch.float32).eval()
with torch.no_grad():
    logits = model(torch.tensor([PROMPT])).logits[0].numpy().astype(np.float32)
    top_ids = np.argsort(-logits, axis=1)[:, :TOPK]
    top_vals = np.take_along_axis(logits, top_ids, axis=1)
    out = model.generate(torch.tensor([PROMPT]), max_new_tokens=GREEDY, do_sample=False, eos_token_id=None,
                         pad_token_id=0)
    greedy = out[0, len(PROMPT):].tolist()

w = gguf.GGUFWriter(os.path.join(here, OUT), "fixture")
w.add_array("golden.prompt", PROMPT)
w.add_array("golden.greedy", greedy)
w.add_tensor("golden.top_ids", top_ids.astype(np.int32))
w.add_tensor("golden.top_logits", top_vals.astype(np.float32))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("greedy", greedy)
