"""ablab.compare, progress and plots on rows made here (no daemon)."""

import io
import json
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ablab import progress as progress_module  # noqa: E402
from ablab import plots  # noqa: E402
from ablab.compare import AB_METRICS, HUMANEVAL_METRICS, Metric, compare_arms, format_comparisons, pooled  # noqa: E402
from ablab.progress import Progress, eta_seconds, format_seconds  # noqa: E402
from ablab.results import read_any_rows, spec_baseline, spec_record_rows  # noqa: E402
from ablab.stats import holm, mcnemar  # noqa: E402

PASS = Metric("pass@1", "passed", binary=True)


def pass_rows(arm, outcomes, seeds=(1,)):
    return [{"arm": arm, "prompt_id": f"p{i}", "seed": s, "passed": bool(o)}
            for i, o in enumerate(outcomes) for s in seeds]


def test_compare_pairs_rows_and_tests_pass_rates_with_mcnemar_and_holm():
    base = [1] * 10 + [0] * 14
    better = [1] * 10 + [1] * 9 + [0] * 5  # 9 prompts only it passes
    same = [0] + [1] * 9 + [1] + [0] * 13  # one lost, one won
    rows = pass_rows("base", base) + pass_rows("better", better) + pass_rows("same", same)
    found = compare_arms(rows, "base", [PASS])
    assert [c.arm for c in found] == ["better", "same"]
    better_c, same_c = found
    assert (better_c.mcnemar.first_only, better_c.mcnemar.second_only) == (0, 9)
    assert better_c.p_value == 2 / 2 ** 9
    assert better_c.estimate == pytest.approx(9 / 24) and better_c.low > 0
    assert same_c.p_value == 1.0 and same_c.estimate == 0.0
    assert [c.p_adjusted for c in found] == pytest.approx(list(holm([2 / 2 ** 9, 1.0])))
    assert better_c.family_size == 2 and better_c.fw_low <= better_c.low and better_c.fw_high >= better_c.high
    assert better_c.n_pairs == 24 and better_c.n_prompts == 24
    text = format_comparisons(found, [PASS])
    assert "0/9" in text and "McNemar exact" in text and "Holm" in text and "Bonferroni" in text


def test_compare_uses_only_common_pairs_and_pools_ratios():
    rows = [{"arm": "a", "prompt_id": f"p{i}", "seed": 1, "tokens": 10, "seconds": 1.0} for i in range(6)]
    rows += [{"arm": "b", "prompt_id": f"p{i}", "seed": 1, "tokens": 10, "seconds": 0.5} for i in range(5)]
    (c,) = compare_arms(rows, "a", [Metric("tok/s", "tokens", "seconds", "ratio")])
    assert c.n_pairs == 5 and c.estimate == pytest.approx(2.0) and c.low == pytest.approx(2.0)
    assert c.baseline_value == pytest.approx(10.0) and c.arm_value == pytest.approx(20.0)
    assert c.mcnemar is None and c.null == 1.0


def test_compare_skips_metrics_an_arm_lacks_and_refuses_ambiguous_pairs():
    rows = [{"arm": "a", "prompt_id": "p", "seed": 1, "tokens": 5, "proposed": 0, "accepted": 0},
            {"arm": "b", "prompt_id": "p", "seed": 1, "tokens": 6, "proposed": 4, "accepted": 2}]
    names = {c.metric for c in compare_arms(rows, "a", AB_METRICS)}
    assert names == {"tokens"}  # no seconds, no calls; acceptance's baseline proposes nothing
    with pytest.raises(ValueError, match="baseline arm 'z'"):
        compare_arms(rows, "z")
    twice = rows + [dict(rows[1])]
    with pytest.raises(ValueError, match="more than one row"):
        compare_arms(twice, "a", AB_METRICS)


def test_compare_by_prompt_pools_each_arms_seeds():
    # One seed of an arm against four of another: paired per prompt, no McNemar.
    one = pass_rows("single", [1, 1, 0, 1])
    four = [{"arm": "many", "prompt_id": f"p{i}", "seed": s, "passed": bool((i + s) % 2)} for i in range(4)
            for s in range(1, 5)]
    (c,) = compare_arms(one + four, "many", [PASS], pair_by="prompt")
    assert c.baseline_value == pytest.approx(0.5) and c.arm_value == pytest.approx(0.75)
    assert c.mcnemar is None and c.n_pairs == 4 and c.n_prompts == 4  # pairs are prompts here
    with pytest.raises(ValueError, match="pair_by"):
        compare_arms(one + four, "many", [PASS], pair_by="run")


def test_explicit_pairs_form_one_family():
    rows = pass_rows("x", [1, 1, 1, 0]) + pass_rows("y", [0, 0, 1, 0]) + pass_rows("z", [1, 0, 0, 0])
    found = compare_arms(rows, pairs=[("x", "y"), ("x", "z")], metrics=[PASS])
    assert [(c.arm, c.baseline) for c in found] == [("x", "y"), ("x", "z")]
    expected = holm([mcnemar([0, 0, 1, 0], [1, 1, 1, 0]).p_value, mcnemar([1, 0, 0, 0], [1, 1, 1, 0]).p_value])
    assert [c.p_adjusted for c in found] == pytest.approx(list(expected))


def test_pooled_figures():
    rows = [{"tokens": 10, "seconds": 2.0}, {"tokens": 30, "seconds": 2.0}, {"tokens": 5}]
    assert pooled(rows[:2], Metric("tok/s", "tokens", "seconds")) == pytest.approx(10.0)
    assert pooled(rows, Metric("tok/s", "tokens", "seconds")) is None  # a row lacks seconds
    assert pooled(rows, Metric("tokens", "tokens")) == pytest.approx(15.0)
    assert any(m.name == "pass@1" and m.binary for m in HUMANEVAL_METRICS)


# ---------------------------------------------------------------------------------------------- progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_fallback_line_has_an_eta():
    clock = FakeClock()
    out = io.StringIO()
    bar = Progress(10, "generations", file=out, use_tqdm=False, every=0.0, clock=clock)
    assert not bar.uses_tqdm
    clock.now += 30.0
    bar.update(3, status="greedy p1 seed 1")
    assert out.getvalue().splitlines()[-1] == "generations: 3/10 [0:30<1:10] greedy p1 seed 1"
    clock.now += 3600.0
    bar.update(7)
    assert out.getvalue().splitlines()[-1] == "generations: 10/10 [1:00:30<0:00]"
    assert eta_seconds(0, 10, 5.0) is None and format_seconds(59.6) == "1:00"


def test_progress_of_a_resumed_run_rates_only_this_runs_work():
    clock = FakeClock()
    out = io.StringIO()
    bar = Progress(100, file=out, use_tqdm=False, every=0.0, clock=clock, initial=90)  # 90 done before
    clock.now += 20.0
    bar.update(2)
    assert out.getvalue().splitlines()[-1] == "92/100 [0:20<1:20]"  # 10 s each, 8 to go


def test_progress_fallback_on_a_log_prints_every_few_seconds():
    clock = FakeClock()
    out = io.StringIO()
    bar = Progress(100, file=out, use_tqdm=False, every=10.0, clock=clock)
    for _ in range(99):
        clock.now += 1.0
        bar.update()
    bar.update()
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 12 and lines[-1].startswith("100/100")


def test_progress_uses_tqdm_when_installed_and_works_without(monkeypatch):
    pytest.importorskip("tqdm")
    out = io.StringIO()
    with Progress(4, "gen", file=out) as bar:
        assert bar.uses_tqdm
        for _ in range(4):
            bar.update(status="arm")
    assert "4/4" in out.getvalue()
    monkeypatch.setattr(progress_module, "_tqdm", lambda: None)
    out = io.StringIO()
    bar = Progress(2, file=out, every=0.0)
    assert not bar.uses_tqdm
    bar.update(2)
    assert out.getvalue().startswith("2/2")
    with pytest.raises(RuntimeError, match="tqdm"):
        Progress(2, use_tqdm=True)


# ---------------------------------------------------------------------------------------------- plots


def humaneval_like_rows():
    rng = np.random.default_rng(3)
    rows = []
    for arm, t, rate in (("greedy", None, 0.7), ("top_p@1.0", None, 0.5), ("top_p@2.0", None, 0.1),
                         ("top_w@1.0", None, 0.65), ("top_w@2.0", None, 0.6)):
        for i in range(24):
            rows.append({"arm": arm, "task_id": f"HumanEval/{i}", "seed": 1, "passed": bool(rng.random() < rate),
                         "tokens": 50, "seconds": 5.0})
    return rows


def is_png(path):
    return pathlib.Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pass_at_1_plot_is_written_next_to_the_results(tmp_path):
    pytest.importorskip("matplotlib")
    rows = humaneval_like_rows()
    points, method = plots.pass_at_1_points(rows, prompt_key="task_id")
    assert {(p["family"], p["temperature"]) for p in points} == {
        ("greedy", 0.0), ("top_p", 1.0), ("top_p", 2.0), ("top_w", 1.0), ("top_w", 2.0)}
    assert method.startswith("Wilson")
    written = plots.write_plots(rows, tmp_path / "topw.jsonl.gz", prompt_key="task_id")
    assert written == [tmp_path / "topw.pass_at_1.png"] and is_png(written[0])


def test_speculative_plots_from_bench_spec_records(tmp_path):
    pytest.importorskip("matplotlib")
    records = []
    for prompt in range(6):
        for decoder, steps, proposed, seconds in (("sample", 32, 0, 2.0), ("sd(L=2)", 12, 24, 2.5),
                                                  ("sd(L=4)", 9, 36, 3.0 + 0.1 * prompt)):
            records.append({"type": "spec_run", "decoder": decoder, "temperature": 0, "prompt_id": f"p{prompt}",
                            "seed": prompt, "tokens": 32, "steps": steps, "proposed": proposed, "seconds": seconds,
                            "target_calls": steps + 1})
    records.append({"type": "gap", "decoder": "ignored"})
    path = tmp_path / "spec.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = read_any_rows([path])
    assert len(rows) == 18 and {r["arm"] for r in rows} == {"sample@0", "sd(L=2)@0", "sd(L=4)@0"}
    points = {p["arm"]: p for p in plots.speculative_points(rows, spec_baseline)}
    assert points["sd(L=2)@0"]["nodes"] == pytest.approx(2.0) and points["sd(L=2)@0"]["tok_per_step"] == pytest.approx(32 / 12)
    assert points["sd(L=2)@0"]["speedup"] == pytest.approx(0.8) and points["sample@0"]["speedup"] == 1.0
    assert points["sd(L=4)@0"]["low"] < points["sd(L=4)@0"]["speedup"] < points["sd(L=4)@0"]["high"]
    written = plots.write_plots(rows, path, baseline=spec_baseline)
    assert sorted(p.name for p in written) == ["spec.speedup.png", "spec.tok_per_step.png"]
    assert all(is_png(p) for p in written)
    assert spec_record_rows([{"type": "other"}]) == []


def test_no_plots_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "pyplot", lambda: None)
    assert plots.write_plots(humaneval_like_rows(), tmp_path / "x.jsonl", prompt_key="task_id") == []
    assert list(tmp_path.iterdir()) == []
