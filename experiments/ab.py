#!/usr/bin/env python3
"""A/B comparison of decodelab decoders through decodelabd (see experiments/README.md).

    .venv/bin/python experiments/ab.py --load t='table(vocab=32,order=2,seed=1,sharpness=2)' \
        --arm greedy --arm t0.8=sample:temperature=0.8 --prompts experiments/tests/table_prompts.jsonl
    .venv/bin/python experiments/ab.py --endpoint ipc:///tmp/decodelabd.sock --arms experiments/arms/main.json \
        --target smol --template chatml --json out.json
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ablab.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
