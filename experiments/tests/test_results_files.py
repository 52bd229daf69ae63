"""The recorded studies in experiments/results: their summaries follow from their raw rows, and the
scripts that make them report from those rows alone (no daemon, model or HumanEval data)."""

import argparse
import json
import pathlib
import shutil
import sys

import pytest

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1]
RESULTS = EXPERIMENTS / "results"
sys.path.insert(0, str(EXPERIMENTS))

import humaneval_ab  # noqa: E402
import report_cntp  # noqa: E402
import smc_vs_best_of_n  # noqa: E402
from ablab import load_arms  # noqa: E402

STUDIES = [  # (raw rows, summary, arms file)
    ("topw_humaneval.jsonl.gz", "topw_humaneval_summary.json", "topw_temperature.json"),
    ("cntp_humaneval.jsonl.gz", "cntp_humaneval_summary.json", "cntp_compute.json"),
    ("cntp_max_trials_humaneval.jsonl.gz", "cntp_max_trials_summary.json", "cntp_max_trials.json"),
    ("topw_p0_humaneval.jsonl.gz", "topw_p0_summary.json", "topw_p0.json"),
]


def test_summary_counts_only_the_seeds_and_problems_asked_for():
    arms = load_arms([{"name": "a", "decoder": "sample"}])
    row = {"arm": "a", "tokens": 10, "target_calls": 10, "seconds": 1.0, "stop_reason": "eos"}
    rows = [dict(row, task_id=f"HumanEval/{i}", seed=1, passed=True) for i in range(4)]
    rows += [dict(row, task_id="HumanEval/0", seed=2, passed=False, seconds=9.0)]  # a stray row of another seed
    rows += [dict(row, task_id="HumanEval/7", seed=1, passed=False)]  # beyond the problems asked for
    (s,) = humaneval_ab.summarize(rows, arms, seeds=[1], problems=4)
    assert s["runs"] == 4 and s["pass@1"] == 1.0 and s["seconds"] == 1.0
    assert "forwards" not in s  # these rows predate the forwards count: none, rather than a made-up 0
    (every,) = humaneval_ab.summarize(rows, arms)
    assert every["runs"] == 6


@pytest.mark.parametrize("raw,summary,arms", STUDIES)
def test_committed_summaries_follow_from_the_raw_rows(raw, summary, arms):
    doc = json.loads((RESULTS / summary).read_text())
    rows = humaneval_ab.read_rows(RESULTS / raw)
    found = humaneval_ab.summarize(rows, load_arms(EXPERIMENTS / "arms" / arms), seeds=doc["seeds"],
                                   problems=doc["problems"])
    assert found == doc["summary"]
    assert all(s["runs"] == doc["problems"] * len(doc["seeds"]) for s in found)


def test_committed_smc_summary_follows_from_the_raw_rows():
    doc = json.loads((RESULTS / "smc_humaneval_summary.json").read_text())
    rows = humaneval_ab.read_rows(RESULTS / "smc_humaneval.jsonl.gz")
    ids = sorted({r["task_id"] for r in rows}, key=humaneval_ab.task_index)
    args = argparse.Namespace(n=doc["n"], seed=1)
    assert smc_vs_best_of_n.summarize(rows, ids, args) == doc["summary"]


def test_report_only_regenerates_the_cntp_summary_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "cntp.jsonl.gz"
    shutil.copy(RESULTS / "cntp_humaneval.jsonl.gz", out)
    assert humaneval_ab.main(["--arms", str(EXPERIMENTS / "arms" / "cntp_compute.json"), "--seeds", "1", "--out", str(out),
                              "--summary", str(tmp_path / "s.json"), "--report-only", "--bootstrap", "500"]) == 0
    text = capsys.readouterr().out
    assert "against 'cntp4':" in text and "McNemar exact" in text
    doc = json.loads((tmp_path / "s.json").read_text())
    committed = json.loads((RESULTS / "cntp_humaneval_summary.json").read_text())
    assert doc["summary"] == committed["summary"] and doc["model"] == "$MODELS/qwen2.5-coder-0.5b-instruct.gguf"
    assert {c["metric"] for c in doc["comparisons"]} >= {"pass@1", "forwards", "s/run"}
    assert (tmp_path / "cntp.pass_at_1.png").read_bytes()[:4] == b"\x89PNG"


def test_cntp_and_smc_reports_run_from_the_committed_rows(capsys):
    assert report_cntp.main([str(RESULTS / "cntp_sample_humaneval.jsonl.gz"), str(RESULTS / "cntp_humaneval.jsonl.gz")]) == 0
    text = capsys.readouterr().out
    assert "| cntp4 | 0.667 | [0.47, 0.82] | 169 | 13.1 |" in text  # seed 1 only: 24 runs, 13.1 s
    assert "| sampling (seed 1) | 0.542 | [0.35, 0.72] | 49 | 7.0 |" in text
    cntp4 = next(line for line in text.splitlines() if line.split()[:3] == ["cntp4", "sample@1.2", "pass@1"])
    assert "2/5" in cntp4  # discordant problems: 2 only sampling passed, 5 only CNTP passed
    assert smc_vs_best_of_n.main(["--out", str(RESULTS / "smc_humaneval.jsonl.gz"), "--problems", "24", "--report-only",
                                  "--bootstrap", "500"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.split()[:3] == ["smc-reward", "best-of-4", "pass@1"])
    assert "3/1" in line and "0.625" in line  # McNemar exact: 2 * (1 + 4) / 16
