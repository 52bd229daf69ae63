"""Plots of result rows, as PNG files next to the JSON Lines they come from (matplotlib, Agg).

matplotlib is optional (scripts/setup installs it): without it :func:`write_plots` writes nothing
and says so. What is drawn depends on the columns the rows have:

* ``passed``: pass@1 per arm against the temperature (``<stem>.pass_at_1.png``), one line per arm
  family (the arm name without its ``@T`` suffix), with 95 % intervals: Wilson's when every arm
  ran each prompt once, otherwise a bootstrap over prompts (an arm's seeds of one prompt are not
  independent); the title says which;
* ``nodes_per_step`` and ``tokens_per_step`` (speculative decoders): tokens per verification step
  against draft nodes per step (``<stem>.tok_per_step.png``), and the wall-clock speedup over the
  baseline against nodes per step (``<stem>.speedup.png``) with paired bootstrap intervals over
  prompts; one series per temperature.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .compare import Metric, compare_arms, pooled
from .stats import bootstrap_interval, wilson

PathLike = Union[str, pathlib.Path]
_SUFFIX_T = re.compile(r"@([0-9]+(?:\.[0-9]*)?)$")


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display), or None when not installed."""
    try:
        import matplotlib  # noqa: WPS433 (optional dependency)
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: WPS433
    return plt


def arm_family(arm: str) -> str:
    """The arm's name without a trailing ``@T`` (``top_p0.9@1.5`` -> ``top_p0.9``)."""
    return _SUFFIX_T.sub("", arm)


def row_temperature(row: Dict[str, Any], temperatures: Optional[Dict[str, float]] = None) -> Optional[float]:
    """A row's temperature: its ``temperature`` column, ``temperatures[arm]``, an ``@T`` suffix of
    the arm's name, or 0 for a greedy arm; None when nothing says."""
    if row.get("temperature") is not None:
        return float(row["temperature"])
    if temperatures and row["arm"] in temperatures and temperatures[row["arm"]] is not None:
        return float(temperatures[row["arm"]])
    match = _SUFFIX_T.search(row["arm"])
    if match:
        return float(match.group(1))
    if row.get("decoder") == "greedy" or row["arm"] == "greedy":
        return 0.0
    return None


def _group(rows: Sequence[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    out: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["arm"], []).append(r)
    return out


def pass_at_1_points(rows: Sequence[Dict[str, Any]], *, prompt_key: str = "prompt_id",
                     temperatures: Optional[Dict[str, float]] = None, seed: int = 0) -> Tuple[List[Dict[str, Any]], str]:
    """Per arm: family, temperature, pass@1, 95 % interval, runs; and the interval's method."""
    groups = _group([r for r in rows if r.get("passed") is not None])
    single = all(len({r[prompt_key] for r in g}) == len(g) for g in groups.values())
    method = "Wilson, one run per prompt" if single else "bootstrap over prompts"
    points = []
    for arm, g in groups.items():
        passed = [bool(r["passed"]) for r in g]
        rate = sum(passed) / len(passed)
        if single:
            low, high = wilson(sum(passed), len(passed))
        else:
            ci = bootstrap_interval([float(p) for p in passed], clusters=[r[prompt_key] for r in g], seed=seed)
            low, high = ci.low, ci.high
        points.append({"arm": arm, "family": arm_family(arm), "temperature": row_temperature(g[0], temperatures),
                       "pass@1": rate, "low": low, "high": high, "runs": len(g)})
    return points, method


def plot_pass_at_1(rows: Sequence[Dict[str, Any]], path: PathLike, *, prompt_key: str = "prompt_id",
                   temperatures: Optional[Dict[str, float]] = None, title: str = "") -> Optional[pathlib.Path]:
    """pass@1 with intervals per arm and temperature; None (nothing written) without matplotlib or
    without a ``passed`` column."""
    plt = pyplot()
    points, method = pass_at_1_points(rows, prompt_key=prompt_key, temperatures=temperatures)
    if plt is None or not points:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    families = list(dict.fromkeys(p["family"] for p in points))
    with_t = [p for p in points if p["temperature"] is not None]
    if with_t:
        width = 0.02 * max(1.0, max(p["temperature"] for p in with_t))
        for i, family in enumerate(families):
            mine = sorted((p for p in points if p["family"] == family and p["temperature"] is not None),
                          key=lambda p: p["temperature"])
            if not mine:
                continue
            shift = (i - (len(families) - 1) / 2) * width  # side by side where temperatures coincide
            xs = [p["temperature"] + shift for p in mine]
            ys = [p["pass@1"] for p in mine]
            err = [[p["pass@1"] - p["low"] for p in mine], [p["high"] - p["pass@1"] for p in mine]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=family, linestyle="-" if len(mine) > 1 else "none")
        ax.set_xlabel("temperature")
    else:
        xs = list(range(len(points)))
        err = [[p["pass@1"] - p["low"] for p in points], [p["high"] - p["pass@1"] for p in points]]
        ax.errorbar(xs, [p["pass@1"] for p in points], yerr=err, marker="o", capsize=3, linestyle="none")
        ax.set_xticks(xs, [p["arm"] for p in points], rotation=30, ha="right")
    ax.set_ylabel("pass@1")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title + ': ' if title else ''}pass@1, 95 % intervals ({method})", fontsize=10)
    if with_t:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def has_speculative_columns(rows: Sequence[Dict[str, Any]]) -> bool:
    return any(r.get("nodes_per_step") for r in rows) and all("tokens_per_step" in r for r in rows)


TOK_PER_STEP = Metric("tok/step", "tokens", "steps", "ratio")
NODES_PER_STEP = Metric("nodes", "proposed", "steps", "ratio")
SPEEDUP = Metric("tok/s", "tokens", "seconds", "ratio")


def speculative_points(rows: Sequence[Dict[str, Any]], baseline: Union[str, Callable[[float], str]], *,
                       prompt_key: str = "prompt_id", temperatures: Optional[Dict[str, float]] = None,
                       n_resamples: int = 2000, seed: int = 0) -> List[Dict[str, Any]]:
    """Per arm: temperature, nodes per step, tokens per step, speedup over its baseline (tok/s
    ratio) with its 95 % paired bootstrap interval. ``baseline``: an arm name, or a function of
    the temperature giving one (``decodelab bench spec`` compares within a temperature)."""
    groups = _group(rows)
    points = []
    for arm, g in groups.items():
        t = row_temperature(g[0], temperatures)
        base = baseline(t) if callable(baseline) else baseline
        point = {"arm": arm, "temperature": t, "nodes": pooled(g, NODES_PER_STEP) or 0.0,
                 "tok_per_step": pooled(g, TOK_PER_STEP), "speedup": None, "low": None, "high": None}
        if base in groups and base != arm:
            found = compare_arms(rows, pairs=[(arm, base)], metrics=[SPEEDUP], prompt_key=prompt_key,
                                 n_resamples=n_resamples, seed=seed)
            if found:
                point.update(speedup=found[0].estimate, low=found[0].low, high=found[0].high)
        elif base == arm:
            point.update(speedup=1.0, low=1.0, high=1.0)
        points.append(point)
    return points


def plot_speculative(rows: Sequence[Dict[str, Any]], stem: PathLike, baseline: Union[str, Callable[[float], str]], *,
                     prompt_key: str = "prompt_id", temperatures: Optional[Dict[str, float]] = None,
                     title: str = "") -> List[pathlib.Path]:
    """``<stem>.tok_per_step.png`` and ``<stem>.speedup.png``; [] without matplotlib or the columns."""
    plt = pyplot()
    if plt is None or not has_speculative_columns(rows):
        return []
    points = speculative_points(rows, baseline, prompt_key=prompt_key, temperatures=temperatures)
    known = sorted({p["temperature"] for p in points if p["temperature"] is not None})
    temps = known + ([None] if any(p["temperature"] is None for p in points) else [])
    stem = pathlib.Path(stem)
    written = []
    for what, ylabel, name in (("tok_per_step", "tokens per verification step", "tok_per_step"),
                               ("speedup", "speedup over the baseline (tok/s ratio, 95 % CI)", "speedup")):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for t in temps:
            mine = sorted((p for p in points if p["temperature"] == t and p[what] is not None), key=lambda p: p["nodes"])
            if not mine:
                continue
            xs = [p["nodes"] for p in mine]
            ys = [p[what] for p in mine]
            label = f"T = {t:g}" if t is not None else "T: decoder default"
            if what == "speedup":
                err = [[max(0.0, p["speedup"] - p["low"]) for p in mine], [max(0.0, p["high"] - p["speedup"]) for p in mine]]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, linestyle="none", label=label)
            else:
                ax.plot(xs, ys, marker="o", linestyle="none", label=label)
            if len(points) <= 24:  # name the points while that stays legible
                for p in mine:
                    ax.annotate(arm_family(p["arm"]), (p["nodes"], p[what]), fontsize=6, xytext=(3, 3),
                                textcoords="offset points")
        if what == "speedup":
            ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xlabel("draft nodes per step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if title:
            ax.set_title(title, fontsize=10)
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}.{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_stem(jsonl: PathLike) -> pathlib.Path:
    """``results/x.jsonl.gz`` -> ``results/x``: where the PNGs of a results file go."""
    path = pathlib.Path(jsonl)
    name = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return path.with_name(name)


def write_plots(rows: Sequence[Dict[str, Any]], jsonl: PathLike, *, baseline: Union[str, Callable[[float], str], None] = None,
                prompt_key: str = "prompt_id", temperatures: Optional[Dict[str, float]] = None,
                title: str = "") -> List[pathlib.Path]:
    """Every plot the rows support, next to ``jsonl``; the paths written ([] without matplotlib)."""
    if pyplot() is None or not rows:
        return []
    stem = plot_stem(jsonl)
    written = []
    if any(r.get("passed") is not None for r in rows):
        p = plot_pass_at_1(rows, stem.with_name(stem.name + ".pass_at_1.png"), prompt_key=prompt_key,
                           temperatures=temperatures, title=title)
        if p:
            written.append(p)
    if has_speculative_columns(rows):
        base = baseline if baseline is not None else rows[0]["arm"]
        written += plot_speculative(rows, stem, base, prompt_key=prompt_key, temperatures=temperatures, title=title)
    return written
