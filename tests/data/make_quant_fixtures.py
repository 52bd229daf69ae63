#!/usr/bin/env python3
"""Writes tests/data/quant_rows.gguf: raw quantized rows plus their dequantization by the PyPI
`gguf` package (gguf.quants.dequantize), the independent reference test_model checks against.

Rows of every type present in the real models are taken from those files (two rows from the first
tensor of each type); F16, BF16 and Q4_0, which the models lack, are quantized from seeded random
data with gguf.quants.quantize. For each case `<case>` the file holds tensor `<case>.raw` (the
original type and bytes) and `<case>.expected` (F32, same shape).

  "$VENV/bin/python" tests/data/make_quant_fixtures.py [models_dir]   ($VENV: see make_golden.py)
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

here = os.path.dirname(os.path.abspath(__file__))
models = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/decodelab/models")
files = ["SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-0.5b-instruct.gguf",
         "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"]

writer = gguf.GGUFWriter(os.path.join(here, "quant_rows.gguf"), "fixture")
seen = set()


def add_case(name, qtype, raw_rows):
    """raw_rows: uint8 array [rows, row_bytes] in `qtype`."""
    expected = gguf.quants.dequantize(raw_rows, qtype).astype(np.float32)
    writer.add_tensor(name + ".raw", raw_rows, raw_dtype=qtype)
    writer.add_tensor(name + ".expected", expected)
    print(name, qtype.name, raw_rows.shape, "->", expected.shape)


for f in files:
    path = os.path.join(models, f)
    if not os.path.exists(path):
        print("skipping missing", path)
        continue
    reader = gguf.GGUFReader(path)
    for t in reader.tensors:
        qtype = t.tensor_type
        if qtype in seen or len(t.shape) < 2:
            continue
        seen.add(qtype)
        raw = np.asarray(t.data).view(np.uint8)
        raw = raw.reshape(-1, raw.shape[-1])[:2].copy()
        add_case(qtype.name.lower(), qtype, raw)

rng = np.random.default_rng(1234)
for qtype in (T.F16, T.BF16, T.Q4_0, T.Q8_0, T.Q4_1, T.Q5_0, T.Q4_K, T.Q6_K):
    data = (rng.standard_normal((2, 512)) * 0.05).astype(np.float32)
    data[0, :7] = [0.0, 1e-6, -3.0, 65504.0 if qtype == T.F16 else 2.5, -1e-8, 7.0, -7.0]
    try:
        raw = gguf.quants.quantize(data, qtype)
    except NotImplementedError:
        continue
    raw = np.asarray(raw).view(np.uint8).reshape(2, -1)
    add_case("random_" + qtype.name.lower(), qtype, raw)

writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
