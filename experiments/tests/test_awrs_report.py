"""awrs_vs_masking.py's paired comparisons and --report-only, on runs built here with known
answers (no daemon needed)."""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import awrs_vs_masking as awrs  # noqa: E402


def make_runs():
    # 2 tasks x 5 seeds: awrs always valid, masking valid on even seeds only (6 discordant pairs);
    # awrs checks 3 tokens per generated token, masking 49,152; awrs samples twice as fast.
    return [awrs.Run(task=t, kind="regex", decoder=d, seed=s, max_tokens=24, tokens=10, text="x", stop_reason="eos",
                     evaluations=(3 if d == "awrs" else 49152) * 10.0, seconds_total=0.5,
                     seconds_sample=0.04 if d == "awrs" else 0.08, valid=d == "awrs" or s % 2 == 0, finished=True,
                     z_hat_mean=0.8 if d == "awrs" else None)
            for t in ("a", "b") for s in range(1, 6) for d in ("awrs", "masking")]


def test_paired_comparisons_have_the_known_answers():
    text = awrs.paired_comparisons(make_runs())
    assert "10 (task, seed) pairs" in text
    assert "masking 4/10, awrs 10/10; awrs - masking +0.600" in text
    assert "only masking 0, only awrs 6, McNemar exact p = 0.031" in text  # 2 * 2**-6
    assert "evaluations per token: awrs / masking 6.104e-05" in text  # 3 / 49152
    assert "sample ms per token: awrs / masking 0.5 [0.5, 0.5]" in text


def test_report_only_reads_a_gzipped_json(tmp_path, capsys):
    import gzip
    from dataclasses import asdict
    path = tmp_path / "runs.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"config": {"model": "m", "seeds": [1, 2, 3, 4, 5], "max_tokens": {"awrs": 24}},
                   "runs": [asdict(r) for r in make_runs()]}, f)
    assert awrs.main(["--report-only", str(path)]) == 0
    out = capsys.readouterr().out
    assert "masking / awrs evaluations per token: 16384x" in out and "McNemar" in out
    with pytest.raises(SystemExit, match="not a readable"):
        awrs.main(["--report-only", str(tmp_path / "missing.json")])


def test_committed_awrs_summaries_follow_from_the_raw_runs(capsys):
    path = pathlib.Path(__file__).resolve().parents[1] / "results" / "awrs_vs_masking.json.gz"
    import gzip
    with gzip.open(path, "rt") as f:
        data = json.load(f)
    config, runs = awrs.read_runs(str(path))
    assert len(runs) == 100 and config["seeds"] == list(range(1, 11))
    recomputed = awrs.summarize(runs, lambda r: (r.decoder,))
    assert json.loads(json.dumps(recomputed)) == data["by_decoder"]
    assert awrs.main(["--report-only", str(path)]) == 0
    assert "masking 36/50, awrs 30/50" in capsys.readouterr().out
