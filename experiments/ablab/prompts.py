"""Prompt sets: JSON Lines, one prompt per line.

    {"id": "code-fib", "category": "code", "prompt": "Write a Python function ...", "source": "..."}
    {"id": "t1", "category": "table", "prompt_ids": [0, 1, 2]}

``prompt`` is the user's message (a chat template may wrap it, see :func:`apply_template`);
``prompt_ids`` gives token ids instead. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union


@dataclass
class Prompt:
    id: str
    text: Optional[str] = None
    ids: Optional[List[int]] = None
    category: str = ""
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if (self.text is None) == (self.ids is None):
            raise ValueError(f"prompt {self.id!r}: exactly one of 'prompt' and 'prompt_ids' is needed")


# Templates by name; "{prompt}" is replaced by the user's message.
TEMPLATES = {
    "none": "{prompt}",
    # ChatML, as SmolLM2-Instruct and Qwen2.5-Instruct were tuned on (their GGUFs' chat template).
    "chatml": "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
}


def apply_template(text: str, template: str = "none") -> str:
    """``template`` is a name from TEMPLATES or a format string containing ``{prompt}``."""
    pattern = TEMPLATES.get(template, template)
    if "{prompt}" not in pattern:
        raise ValueError(f"template {template!r}: not one of {sorted(TEMPLATES)} and has no '{{prompt}}'")
    return pattern.replace("{prompt}", text)


def load_prompts(path: Union[str, pathlib.Path], *, categories: Optional[Sequence[str]] = None,
                 per_category: Optional[int] = None, limit: Optional[int] = None) -> List[Prompt]:
    """Prompts of ``path`` in file order, optionally only the given categories, the first
    ``per_category`` of each, and at most ``limit`` in all."""
    prompts: List[Prompt] = []
    seen = set()
    for number, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not JSON ({e})") from None
        pid = str(d.get("id", f"{pathlib.Path(path).stem}-{number}"))
        if pid in seen:
            raise ValueError(f"{path}:{number}: duplicate prompt id {pid!r}")
        seen.add(pid)
        meta = {k: v for k, v in d.items() if k not in ("id", "prompt", "prompt_ids", "category")}
        ids = d.get("prompt_ids")
        prompts.append(Prompt(id=pid, text=d.get("prompt"), ids=list(ids) if ids is not None else None,
                              category=str(d.get("category", "")), meta=meta))
    if categories is not None:
        prompts = [p for p in prompts if p.category in categories]
    if per_category is not None:
        count: Dict[str, int] = {}
        kept = []
        for p in prompts:
            count[p.category] = count.get(p.category, 0) + 1
            if count[p.category] <= per_category:
                kept.append(p)
        prompts = kept
    return prompts[:limit] if limit is not None else prompts
