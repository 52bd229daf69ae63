"""Arms: one decoder configuration each (decoder name, parameters, models by role).

Arms are written in Python, in a JSON file (a list of objects with the fields of :class:`Arm`),
or on a command line as ``NAME=DECODER[:k=v,k=v][@role=model,role=model]``, e.g.
``t0.7=sample:temperature=0.7,top_p=0.9`` or ``sd4=sd:k=4@draft=d``.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union


@dataclass
class Arm:
    """``models`` maps roles to loaded model names; roles left out (usually ``target``) take the
    runner's defaults. An ``optional`` arm is skipped, with the daemon's reason, when the daemon
    rejects it (a decoder or sampler this build lacks, a parameter it does not know), so an arm
    list can name decoders before they are merged."""

    name: str
    decoder: str
    params: Dict[str, Any] = field(default_factory=dict)
    models: Dict[str, str] = field(default_factory=dict)
    optional: bool = False
    note: str = ""

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Arm":
        unknown = set(d) - {"name", "decoder", "params", "models", "optional", "note"}
        if unknown:
            raise ValueError(f"arm {d.get('name', '?')!r}: unknown field(s) {sorted(unknown)}")
        if "decoder" not in d:
            raise ValueError(f"arm {d.get('name', '?')!r}: 'decoder' is required")
        return cls(name=str(d.get("name", d["decoder"])), decoder=str(d["decoder"]), params=dict(d.get("params", {})),
                   models=dict(d.get("models", {})), optional=bool(d.get("optional", False)), note=str(d.get("note", "")))

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "decoder": self.decoder, "params": dict(self.params), "models": dict(self.models),
                "optional": self.optional, "note": self.note}


def _parse_value(text: str) -> Any:
    """Numbers and booleans as such, anything else as a string (the daemon checks types)."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_arm(text: str) -> Arm:
    """``NAME=DECODER[:k=v,...][@role=model,...]``; ``NAME=`` may be left out (the decoder names it).
    A parameter value may not contain ``,`` (use a JSON arms file for sampler chains)."""
    name, _, rest = text.partition("=") if "=" in text.split(":", 1)[0].split("@", 1)[0] else ("", "", text)
    rest, _, roles = rest.partition("@")
    decoder, _, assignments = rest.partition(":")
    if not decoder:
        raise ValueError(f"arm {text!r}: no decoder")
    params: Dict[str, Any] = {}
    for item in filter(None, assignments.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"arm {text!r}: expected k=v, got {item!r}")
        params[key.strip()] = _parse_value(value.strip())
    models: Dict[str, str] = {}
    for item in filter(None, roles.split(",")):
        role, eq, model = item.partition("=")
        if not eq or not role or not model:
            raise ValueError(f"arm {text!r}: expected role=model, got {item!r}")
        models[role.strip()] = model.strip()
    return Arm(name=name or decoder, decoder=decoder, params=params, models=models)


def load_arms(source: Union[str, pathlib.Path, List[Any]]) -> List[Arm]:
    """Arms from a JSON file or an already-parsed list (objects or command-line strings)."""
    items = json.loads(pathlib.Path(source).read_text()) if isinstance(source, (str, pathlib.Path)) else source
    if isinstance(items, dict):
        items = items.get("arms", [])
    arms = [parse_arm(i) if isinstance(i, str) else Arm.from_dict(i) for i in items]
    names = [a.name for a in arms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"arm names must be unique: {duplicates}")
    return arms


def config_hash(arm: Arm, run_config: Dict[str, Any]) -> str:
    """A short stable hash of what determines an arm's generations: its decoder, parameters and
    models (``run_config["models"]``: role -> model spec, after the runner's defaults), and the
    run's settings that reach the daemon (``max_tokens``, ``template``, ``stop_at_eos``, ``stop``).
    The arm's name, note and ``optional`` flag are left out, so two names for one configuration
    share a hash and rows of separate runs can be matched by configuration. ``cfg-`` and 16 hex
    digits of the SHA-256 of the canonical JSON (the prefix keeps pandas from reading an all-digit
    hash, or one like ``12e4...``, as a number)."""
    payload = {"decoder": arm.decoder, "params": arm.params, "models": run_config.get("models", {}),
               **{k: run_config.get(k) for k in ("max_tokens", "template", "stop_at_eos", "stop")}}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "cfg-" + hashlib.sha256(text.encode()).hexdigest()[:16]


_CHAIN_TEMPERATURE = re.compile(r"(?:^|[,\s])temperature\(\s*t\s*=\s*([0-9.eE+-]+)\s*\)")


def arm_temperature(arm: Arm) -> Optional[float]:
    """The sampling temperature an arm names: 0 for ``greedy``, its ``temperature`` parameter, or
    the ``t`` of a ``temperature(t=...)`` stage of its sampler chain; None when it names none (the
    decoder's default applies)."""
    if arm.decoder == "greedy":
        return 0.0
    if "temperature" in arm.params:
        try:
            return float(arm.params["temperature"])
        except (TypeError, ValueError):
            return None
    match = _CHAIN_TEMPERATURE.search(str(arm.params.get("chain", "")))
    return float(match.group(1)) if match else None
