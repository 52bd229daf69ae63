"""Plain result types returned by the clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class Chunk:
    """Tokens streamed as they were produced. ``index`` is the position of ``tokens[0]``
    among the generated tokens; ``text`` is the new text (never a partial UTF-8 character)."""

    index: int
    tokens: List[int]
    text: str
    logprobs: Optional[List[float]] = None
    seed: Optional[int] = None  # set for generate_many: the generation the chunk belongs to


@dataclass
class GenerateResult:
    """The final reply of a generation.

    ``stop_reason`` is one of max_tokens, eos, stop_token, stop_string, cancelled, deadline,
    disconnected, shutdown, all_particles_dead (smc). ``stats`` is the decoder's Stats (target_calls, tokens_accepted,
    seconds per phase, decoder metrics, ...); ``timings`` has queue_s, lock_s, run_s, total_s.
    """

    id: int
    tokens: List[int]
    text: str
    stop_reason: str
    prompt_tokens: int
    stats: Dict[str, Any] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    logprobs: Optional[List[float]] = None
    seed: Optional[int] = None  # set for generate_many's results

    @classmethod
    def from_reply(cls, r: dict, request_id: Optional[int] = None) -> "GenerateResult":
        """A result message, or (with ``request_id``) one member of a generate_many result. A
        member stopped before it started has no prompt_tokens, stats or timings."""
        return cls(id=r["id"] if request_id is None else request_id, tokens=list(r["tokens"]), text=r["text"],
                   stop_reason=r["stop_reason"], prompt_tokens=r.get("prompt_tokens", 0), stats=r.get("stats", {}),
                   timings=r.get("timings", {}), logprobs=r.get("logprobs"), seed=r.get("seed"))


def results_from_reply(r: dict) -> List[GenerateResult]:
    """The per-seed results of a generate_many reply, in the order of the seeds asked for."""
    return [GenerateResult.from_reply(m, r["id"]) for m in r["results"]]


def chunk_from_message(m: dict) -> Chunk:
    return Chunk(index=m["index"], tokens=list(m["tokens"]), text=m["text"], logprobs=m.get("logprobs"),
                 seed=m.get("seed"))


def many_fields(n=None, seeds=None, seed=0) -> dict:
    """The seed fields of a generate_many request: ``n`` seeds from ``seed`` on, or a ``seeds`` list."""
    if (n is None) == (seeds is None):
        raise TypeError("generate_many takes either n (seeds seed .. seed+n-1) or seeds (a list), not both")
    if seeds is not None:
        return {"seeds": [int(s) for s in seeds]}
    return {"n": int(n), "seed": seed}


def generate_fields(prompt=None, *, model="t", models=None, draft=None, decoder="sample", params=None,
                    prompt_ids=None, seed=0, max_tokens=64, stop=None, stop_token_ids=None,
                    stop_at_eos=True, logprobs=False, deadline=None, reward=None, reward_timeout=None) -> dict:
    """The request fields of a generate op (shared by the sync and async clients)."""
    roles = dict(models) if models else {"target": model}
    if draft is not None:
        roles["draft"] = draft
    fields = {"models": roles, "decoder": decoder, "seed": seed, "max_tokens": max_tokens,
              "stop_at_eos": stop_at_eos, "logprobs": logprobs}
    if params:
        fields["params"] = dict(params)
    if prompt is not None:
        fields["prompt"] = prompt
    if prompt_ids is not None:
        fields["prompt_ids"] = list(prompt_ids)
    if stop:
        fields["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if stop_token_ids:
        fields["stop_token_ids"] = list(stop_token_ids)
    if deadline is not None:
        fields["deadline_s"] = float(deadline)
    if reward is not None:
        if not callable(reward):
            raise TypeError("reward must be a callable: texts (list of str) -> one log-potential per text")
        fields["client_reward"] = True
    if reward_timeout is not None:
        fields["reward_timeout_s"] = float(reward_timeout)
    return fields


def reward_scores(reward, message) -> list:
    """Calls the client's reward on a reward_request's texts and checks what it returned."""
    texts = list(message.get("texts", []))
    scores = [float(s) for s in reward(texts)]
    if len(scores) != len(texts):
        raise ValueError(f"reward returned {len(scores)} scores for {len(texts)} texts")
    return scores
