"""Runs every arm on every (prompt, seed) and records what each generation returned.

Generations are interleaved: for each prompt, for each seed, every arm in turn. Arms at the same
(prompt, seed) use the same seed, hence the same random numbers, and slow drifts of the machine
(another job, frequency scaling) hit every arm alike instead of whichever ran last.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ._client import decodelab
from .arms import Arm, config_hash
from .prompts import Prompt, apply_template


class ArmRejected(RuntimeError):
    """The daemon refused a required arm (unknown decoder, bad parameter, missing model)."""

    def __init__(self, arm: Arm, error: Exception):
        super().__init__(f"arm {arm.name!r} (decoder {arm.decoder!r}, params {arm.params}): {error}")
        self.arm = arm
        self.error = error

    def __reduce__(self):
        # Pickled by its arguments, so it crosses process boundaries (the Ray runner's actors).
        return (ArmRejected, (self.arm, self.error))


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
    passed: Optional[bool] = None  # the run_ab(score=...) verdict, when a scorer was given


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


def portable_spec(spec: str) -> str:
    """A model spec with the model directory written as $MODELS, so configuration hashes (and the
    recorded specs) do not depend on where a machine keeps its models."""
    models_dir = os.environ.get("DECODELAB_MODELS") or os.path.expanduser("~/.cache/decodelab/models")
    return spec.replace(models_dir.rstrip("/") + "/", "$MODELS/") if models_dir else spec


def _arm_models(arm: Arm, roles: Dict[str, str], decoder_roles: Dict[str, set]) -> Dict[str, str]:
    # Default roles go only to decoders that take them (the daemon refuses a role a decoder does not use).
    takes = decoder_roles.get(arm.decoder)
    defaults = {r: m for r, m in roles.items() if takes is None or r in takes}
    return {**defaults, **arm.models}


def _request(prompt: Prompt, arm: Arm, roles: Dict[str, str], seed: int, max_tokens: int, template: str,
             options: Dict[str, Any], decoder_roles: Dict[str, set]) -> Dict[str, Any]:
    request = dict(models=_arm_models(arm, roles, decoder_roles), decoder=arm.decoder, params=dict(arm.params), seed=seed,
                   max_tokens=max_tokens, logprobs=True, **options)
    if prompt.text is not None:
        request["prompt"] = apply_template(prompt.text, template)
    else:
        request["prompt_ids"] = list(prompt.ids)
    return request


def generation_options(stop_at_eos: bool = True, stop: Optional[List[str]] = None) -> Dict[str, Any]:
    """The request options every generation of a study shares."""
    options: Dict[str, Any] = {"stop_at_eos": stop_at_eos}
    if stop:
        options["stop"] = list(stop)
    return options


@dataclass
class Plan:
    """What a study runs once its arms were probed: the arms kept (optional ones the daemon
    refused are in ``skipped``), the study's configuration and each decoder's model roles."""

    arms: List[Arm]
    skipped: List[Skipped]
    config: Dict[str, Any]
    decoder_roles: Dict[str, set]
    roles: Dict[str, str]
    template: str
    options: Dict[str, Any]
    max_tokens: int

    def request(self, prompt: Prompt, arm: Arm, seed: int) -> Dict[str, Any]:
        """The generate request of one (prompt, arm, seed)."""
        return _request(prompt, arm, self.roles, int(seed), self.max_tokens, self.template, self.options,
                        self.decoder_roles)


def prepare(client: "decodelab.Client", arms: Sequence[Arm], prompts: Sequence[Prompt], seeds: Sequence[int], *,
            roles: Dict[str, str], max_tokens: int, template: str, options: Dict[str, Any],
            probe_tokens: int = 2) -> Plan:
    """Reads the daemon's decoders and models, probes every arm (``probe_tokens`` tokens on the
    first prompt and seed, not recorded) and hashes each kept arm's configuration."""
    config = {"max_tokens": max_tokens, "seeds": list(seeds), "prompts": [p.id for p in prompts], "models": roles,
              "template": template, "stop_at_eos": options.get("stop_at_eos", True),
              "stop": list(options.get("stop") or []), "endpoint": getattr(client, "endpoint", ""),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        config["daemon"] = {k: client.hello().get(k) for k in ("version", "build", "backends")}
    except decodelab.DecodelabError as e:
        raise RuntimeError(f"no decodelabd at {config['endpoint']}: {e}") from None
    decoder_roles = {d["name"]: set(d["roles"]) | set(d.get("optional_roles", [])) | {"target"}
                     for d in client.list_decoders()}
    # The loaded models' specs, so a configuration hash names the models, not their local names.
    specs = {m.get("name"): portable_spec(m.get("model") or m.get("spec") or m.get("name"))
             for m in client.list_models().get("models", [])}
    config["model_specs"] = specs
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
    config["config_hashes"] = {}
    for arm in kept:
        models = {role: specs.get(name, name) for role, name in _arm_models(arm, roles, decoder_roles).items()}
        config["config_hashes"][arm.name] = config_hash(arm, {**config, "models": models})
    return Plan(arms=kept, skipped=skipped, config=config, decoder_roles=decoder_roles, roles=dict(roles),
                template=template, options=dict(options), max_tokens=max_tokens)


def make_run(prompt: Prompt, arm: Arm, seed: int, r) -> Run:
    """The recorded Run of one generation's result."""
    return Run(arm=arm.name, prompt_id=prompt.id, category=prompt.category, seed=int(seed), tokens=list(r.tokens),
               text=r.text, logprobs=list(r.logprobs or []), stop_reason=r.stop_reason, prompt_tokens=r.prompt_tokens,
               stats=dict(r.stats), timings=dict(r.timings))


def run_ab(target: Union[str, "decodelab.Client"], arms: Sequence[Arm], prompts: Sequence[Prompt],
           seeds: Sequence[int], *, max_tokens: int = 32, models: Optional[Dict[str, str]] = None,
           template: str = "none", stop_at_eos: bool = True, stop: Optional[List[str]] = None,
           probe_tokens: int = 2, timeout: float = 300.0,
           progress: Optional[Callable[[int, int, Run], None]] = None,
           score: Optional[Callable[[Prompt, Run], bool]] = None, batch_seeds: bool = False) -> ABResult:
    """Runs ``arms`` x ``prompts`` x ``seeds`` on the daemon at ``target`` (an endpoint or a Client).

    ``models`` are the default roles (``{"target": "t"}`` unless given); an arm's own ``models``
    override them. Each arm is first probed with a ``probe_tokens``-token generation (not
    recorded): it warms the model up (page cache, allocator) and turns a rejected arm into an
    :class:`ArmRejected` before anything is measured, or into a :class:`Skipped` for an optional
    arm. ``progress(done, total, run)`` is called after each generation. ``score(prompt, run)``,
    when given, judges each generation pass or fail (``Run.passed``): pass@1 then appears in the
    comparisons (compare.AB_METRICS), tested with McNemar's test.

    ``batch_seeds``: each (prompt, arm) sends all its seeds in one request (``generate_many``),
    which the daemon runs side by side, sharing forward passes. Tokens, texts and log-probabilities
    are the same as one request per seed; timings are not comparable with unbatched runs (a
    generation's wall time then includes its batch mates' work), so use it for quality studies.
    """
    if not arms:
        raise ValueError("run_ab: no arms")
    if not prompts:
        raise ValueError("run_ab: no prompts")
    if not seeds:
        raise ValueError("run_ab: no seeds")
    roles = dict(models or {"target": "t"})
    options = generation_options(stop_at_eos, stop)
    own_client = isinstance(target, str)
    client = decodelab.Client(target, timeout=timeout) if own_client else target
    try:
        plan = prepare(client, arms, prompts, seeds, roles=roles, max_tokens=max_tokens, template=template,
                       options=options, probe_tokens=probe_tokens)
        kept, config, decoder_roles = plan.arms, plan.config, plan.decoder_roles
        runs: List[Run] = []
        total = len(prompts) * len(seeds) * len(kept)
        config["batch_seeds"] = bool(batch_seeds)

        def record(prompt: Prompt, arm: Arm, seed: int, r) -> None:
            run = make_run(prompt, arm, seed, r)
            if score is not None:
                run.passed = bool(score(prompt, run))
            runs.append(run)
            if progress:
                progress(len(runs), total, run)

        for prompt in prompts:
            if batch_seeds:
                by_arm = {}
                for arm in kept:
                    request = _request(prompt, arm, roles, 0, max_tokens, template, options, decoder_roles)
                    request.pop("seed")
                    by_arm[arm.name] = client.generate_many(seeds=[int(s) for s in seeds], **request)
                # Recorded in the unbatched order (seed, then arm), so the two modes write the same rows.
                for i, seed in enumerate(seeds):
                    for arm in kept:
                        record(prompt, arm, int(seed), by_arm[arm.name][i])
                continue
            for seed in seeds:
                for arm in kept:
                    record(prompt, arm, int(seed),
                           client.generate(**_request(prompt, arm, roles, int(seed), max_tokens, template, options,
                                                      decoder_roles)))
        return ABResult(arms=kept, runs=runs, skipped=plan.skipped, config=config)
    finally:
        if own_client:
            client.close()
