"""Speed of decoders per task domain and number of concurrent clients, through decodelabd.

A level is (domain, arm, concurrency c): c clients, each with its own connection, start together
and each streams ``rounds`` x ceil(P / c) generations of the domain's P prompts (client i's k-th
request takes prompt (i + k c) mod P), so every level covers every prompt at least ``rounds`` times
and levels of different c average over the same prompts. Per request the client measures the time to its first token (the first
streamed chunk that carries one) and the whole request's time; the daemon's stats give the
decoder's steps. Per level:

* ``accept_len``: generated tokens per decoder step (1 for one-token decoding; prompt lookup or a
  draft model make it larger when their guesses are accepted);
* ``tok/s/user``: the mean over requests of tokens / request time (what one user sees, first
  token's wait included);
* ``tok/s aggr``: all tokens of the level / the level's wall time (what the daemon delivers);
* ``TTFT``: the median time to first token.

Every arm decodes greedily (temperature 0) so the arms' outputs must be identical; the table says
how many of an arm's requests reproduced the baseline's tokens (``=base``), which checks that a
speed-up is not bought with different text.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ._client import decodelab
from .arms import Arm
from .prompts import apply_template

DOMAINS = ("code_completion", "code_editing", "chat", "math", "summarization", "multilingual")


@dataclass
class BenchPrompt:
    id: str
    domain: str
    text: str  # the user's message (instruction, then the document when there is one)


def load_bench_prompts(path: pathlib.Path, domains: Optional[Sequence[str]] = None,
                       per_domain: Optional[int] = None) -> List[BenchPrompt]:
    """JSON Lines of ``{"id", "domain", "prompt"}``, optionally ``"document"``: a text file beside
    the prompt file appended to the prompt (long inputs). ``#`` lines are comments."""
    path = pathlib.Path(path)
    out: List[BenchPrompt] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = json.loads(line)
            text = entry["prompt"]
            if entry.get("document"):
                text += "\n\n" + (path.parent / entry["document"]).read_text(encoding="utf-8")
            prompt = BenchPrompt(str(entry["id"]), str(entry["domain"]), text)
        except (ValueError, KeyError, OSError) as e:
            raise ValueError(f"{path}:{n}: bad benchmark prompt ({type(e).__name__}: {e})") from None
        out.append(prompt)
    if domains:
        unknown = set(domains) - {p.domain for p in out}
        if unknown:
            raise ValueError(f"{path}: no prompts of domain(s) {sorted(unknown)}; it has {sorted({p.domain for p in out})}")
        out = [p for p in out if p.domain in domains]
    if per_domain is not None:
        seen: Dict[str, int] = {}
        kept = []
        for p in out:
            seen[p.domain] = seen.get(p.domain, 0) + 1
            if seen[p.domain] <= per_domain:
                kept.append(p)
        out = kept
    if not out:
        raise ValueError(f"{path}: no prompts selected")
    return out


@dataclass
class Request:
    """One streamed generation of a level."""

    domain: str
    arm: str
    concurrency: int
    prompt_id: str
    client: int
    tokens: List[int]
    ttft_s: Optional[float]  # None when no token came
    total_s: float
    steps: int
    prompt_tokens: int
    stop_reason: str


@dataclass
class Level:
    domain: str
    arm: str
    concurrency: int
    wall_s: float
    requests: List[Request] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(len(r.tokens) for r in self.requests)

    @property
    def accept_len(self) -> Optional[float]:
        steps = sum(r.steps for r in self.requests)
        return self.tokens / steps if steps else None

    @property
    def tok_s_user(self) -> float:
        return statistics.fmean(len(r.tokens) / r.total_s for r in self.requests)

    @property
    def tok_s_aggregate(self) -> float:
        return self.tokens / self.wall_s

    @property
    def ttft_s(self) -> Optional[float]:
        firsts = [r.ttft_s for r in self.requests if r.ttft_s is not None]
        return statistics.median(firsts) if firsts else None


def _stream_one(client: "decodelab.Client", request: Dict) -> tuple:
    start = time.perf_counter()
    first = None
    stream = client.stream(**request)
    for chunk in stream:
        if first is None and chunk.tokens:
            first = time.perf_counter() - start
    return stream.result, first, time.perf_counter() - start


def run_level(endpoint: str, domain: str, arm: Arm, prompts: Sequence[BenchPrompt], concurrency: int, *,
              roles: Dict[str, str], max_tokens: int, template: str, rounds: int = 1, seed: int = 1,
              timeout: float = 600.0) -> Level:
    """``concurrency`` clients stream ``rounds`` x ceil(prompts / concurrency) requests each, all
    started together."""
    if concurrency < 1 or rounds < 1:
        raise ValueError(f"run_level: concurrency and rounds must be at least 1, got {concurrency} and {rounds}")
    mine = [p for p in prompts if p.domain == domain]
    if not mine:
        raise ValueError(f"run_level: no prompts of domain {domain!r}")
    models = {**roles, **arm.models}
    per_client = rounds * -(-len(mine) // concurrency)
    results: List[Optional[List[Request]]] = [None] * concurrency
    errors: List[BaseException] = []
    ready = threading.Barrier(concurrency + 1)

    def client_loop(i: int) -> None:
        done: List[Request] = []
        try:
            with decodelab.Client(endpoint, timeout=timeout) as c:
                ready.wait()
                for k in range(per_client):
                    prompt = mine[(i + k * concurrency) % len(mine)]
                    request = dict(prompt=apply_template(prompt.text, template), models=models, decoder=arm.decoder,
                                   params=dict(arm.params), seed=seed, max_tokens=max_tokens, stop_at_eos=True)
                    r, first, total = _stream_one(c, request)
                    done.append(Request(domain, arm.name, concurrency, prompt.id, i, list(r.tokens), first, total,
                                        int(r.stats.get("steps", 0)), r.prompt_tokens, r.stop_reason))
        except threading.BrokenBarrierError:
            return
        except BaseException as e:  # reported by the caller, with the arm's name
            errors.append(e)
            ready.abort()
        results[i] = done

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"arm {arm.name!r}, domain {domain}, {concurrency} clients: {errors[0]}") from errors[0]
    level = Level(domain, arm.name, concurrency, wall)
    for done in results:
        level.requests.extend(done or [])
    return level


def same_tokens(level: Level, baseline: Level) -> int:
    """How many of ``level``'s requests gave the baseline's tokens for the same prompt."""
    want = {r.prompt_id: r.tokens for r in baseline.requests}
    return sum(1 for r in level.requests if want.get(r.prompt_id) == r.tokens)


def _fmt(x: Optional[float], digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def format_domain_table(domain: str, levels: Sequence[Level], baseline: str) -> str:
    """One domain's levels: a row per (concurrency, arm), speed-ups against ``baseline`` at the
    same concurrency."""
    base = {lv.concurrency: lv for lv in levels if lv.arm == baseline}
    header = (f"{'clients':>7}  {'arm':<14} {'reqs':>4} {'tokens':>6} {'accept_len':>10} {'tok/s/user':>10} "
              f"{'tok/s aggr':>10} {'TTFT s':>7} {'x base':>6} {'=base':>6}")
    prompt_tokens = [r.prompt_tokens for lv in levels for r in lv.requests]
    lines = [f"{domain} (prompts of {min(prompt_tokens)}-{max(prompt_tokens)} tokens)" if prompt_tokens else domain,
             header]
    for lv in sorted(levels, key=lambda lv: (lv.concurrency, lv.arm != baseline)):
        b = base.get(lv.concurrency)
        ratio = lv.tok_s_aggregate / b.tok_s_aggregate if b is not None and b.tok_s_aggregate else None
        equal = f"{same_tokens(lv, b)}/{len(lv.requests)}" if b is not None and lv.arm != baseline else "-"
        lines.append(f"{lv.concurrency:>7}  {lv.arm:<14} {len(lv.requests):>4} {lv.tokens:>6} "
                     f"{_fmt(lv.accept_len, 2):>10} {lv.tok_s_user:>10.1f} {lv.tok_s_aggregate:>10.1f} "
                     f"{_fmt(lv.ttft_s, 2):>7} {_fmt(ratio, 2):>6} {equal:>6}")
    return "\n".join(lines)
