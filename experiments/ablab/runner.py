"""Runs every arm on every (prompt, seed) and records what each generation returned.

Generations are interleaved: for each prompt, for each seed, every arm in turn. Arms at the same
(prompt, seed) use the same seed, hence the same random numbers, and slow drifts of the machine
(another job, frequency scaling) hit every arm alike instead of whichever ran last.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ._client import decodelab
from .arms import Arm
from .prompts import Prompt, apply_template


class ArmRejected(RuntimeError):
    """The daemon refused a required arm (unknown decoder, bad parameter, missing model)."""

    def __init__(self, arm: Arm, error: Exception):
        super().__init__(f"arm {arm.name!r} (decoder {arm.decoder!r}, params {arm.params}): {error}")
        self.arm = arm
        self.error = error


@dataclass
class Run:
    """One generation: an arm on a prompt with a seed."""

    arm: str
    prompt_id: str
    category: str
    seed: int
    tokens: List[int]
    text: str
    logprobs: List[float]
    stop_reason: str
    prompt_tokens: int
    stats: Dict[str, Any] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)


@dataclass
class Skipped:
    """An optional arm the daemon rejected, with its reason."""

    arm: str
    reason: str


@dataclass
class ABResult:
    arms: List[Arm]
    runs: List[Run]
    skipped: List[Skipped]
    config: Dict[str, Any]

    def runs_of(self, arm: str) -> List[Run]:
        return [r for r in self.runs if r.arm == arm]

    def to_dict(self) -> Dict[str, Any]:
        return {"config": self.config, "arms": [a.to_dict() for a in self.arms],
                "skipped": [asdict(s) for s in self.skipped], "runs": [asdict(r) for r in self.runs]}


def _request(prompt: Prompt, arm: Arm, roles: Dict[str, str], seed: int, max_tokens: int, template: str,
             options: Dict[str, Any], decoder_roles: Dict[str, set]) -> Dict[str, Any]:
    # Default roles go only to decoders that take them (the daemon refuses a role a decoder does not use).
    takes = decoder_roles.get(arm.decoder)
    defaults = {r: m for r, m in roles.items() if takes is None or r in takes}
    request = dict(models={**defaults, **arm.models}, decoder=arm.decoder, params=dict(arm.params), seed=seed,
                   max_tokens=max_tokens, logprobs=True, **options)
    if prompt.text is not None:
        request["prompt"] = apply_template(prompt.text, template)
    else:
        request["prompt_ids"] = list(prompt.ids)
    return request


def run_ab(target: Union[str, "decodelab.Client"], arms: Sequence[Arm], prompts: Sequence[Prompt],
           seeds: Sequence[int], *, max_tokens: int = 32, models: Optional[Dict[str, str]] = None,
           template: str = "none", stop_at_eos: bool = True, stop: Optional[List[str]] = None,
           probe_tokens: int = 2, timeout: float = 300.0,
           progress: Optional[Callable[[int, int, Run], None]] = None) -> ABResult:
    """Runs ``arms`` x ``prompts`` x ``seeds`` on the daemon at ``target`` (an endpoint or a Client).

    ``models`` are the default roles (``{"target": "t"}`` unless given); an arm's own ``models``
    override them. Each arm is first probed with a ``probe_tokens``-token generation (not
    recorded): it warms the model up (page cache, allocator) and turns a rejected arm into an
    :class:`ArmRejected` before anything is measured, or into a :class:`Skipped` for an optional
    arm. ``progress(done, total, run)`` is called after each generation.
    """
    if not arms:
        raise ValueError("run_ab: no arms")
    if not prompts:
        raise ValueError("run_ab: no prompts")
    if not seeds:
        raise ValueError("run_ab: no seeds")
    roles = dict(models or {"target": "t"})
    options: Dict[str, Any] = {"stop_at_eos": stop_at_eos}
    if stop:
        options["stop"] = list(stop)
    own_client = isinstance(target, str)
    client = decodelab.Client(target, timeout=timeout) if own_client else target
    config = {"max_tokens": max_tokens, "seeds": list(seeds), "prompts": [p.id for p in prompts], "models": roles,
              "template": template, "stop_at_eos": stop_at_eos, "stop": list(stop or []),
              "endpoint": getattr(client, "endpoint", ""), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        try:
            config["daemon"] = {k: client.hello().get(k) for k in ("version", "build", "backends")}
        except decodelab.DecodelabError as e:
            raise RuntimeError(f"no decodelabd at {config['endpoint']}: {e}") from None
        decoder_roles = {d["name"]: set(d["roles"]) | set(d.get("optional_roles", [])) | {"target"}
                         for d in client.list_decoders()}
        kept: List[Arm] = []
        skipped: List[Skipped] = []
        for arm in arms:
            try:
                client.generate(**_request(prompts[0], arm, roles, int(seeds[0]), probe_tokens, template, options, decoder_roles))
                kept.append(arm)
            except (decodelab.InvalidArgument, decodelab.NotFound, decodelab.BadFormat, decodelab.Unsupported) as e:
                if not arm.optional:
                    raise ArmRejected(arm, e) from None
                skipped.append(Skipped(arm.name, str(e)))
        runs: List[Run] = []
        total = len(prompts) * len(seeds) * len(kept)
        for prompt in prompts:
            for seed in seeds:
                for arm in kept:
                    r = client.generate(**_request(prompt, arm, roles, int(seed), max_tokens, template, options, decoder_roles))
                    run = Run(arm=arm.name, prompt_id=prompt.id, category=prompt.category, seed=int(seed),
                              tokens=list(r.tokens), text=r.text, logprobs=list(r.logprobs or []),
                              stop_reason=r.stop_reason, prompt_tokens=r.prompt_tokens, stats=dict(r.stats),
                              timings=dict(r.timings))
                    runs.append(run)
                    if progress:
                        progress(len(runs), total, run)
        return ABResult(arms=kept, runs=runs, skipped=skipped, config=config)
    finally:
        if own_client:
            client.close()
