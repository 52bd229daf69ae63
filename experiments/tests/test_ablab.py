"""The A/B runner against a real decodelabd on analytic table models (no real model needed).

The daemon binary is $DECODELAB_BUILD_DIR/bin/decodelabd (scripts/test sets it; default build/).
"""

import argparse
import csv
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
EXPERIMENTS = HERE.parent
sys.path.insert(0, str(EXPERIMENTS))

import ablab  # noqa: E402
from ablab import Arm, ArmRejected, Daemon, Prompt, load_arms, parse_arm, run_ab, summarize  # noqa: E402
from ablab.cli import add_run_arguments, run_and_report  # noqa: E402
from ablab.daemon import default_binary  # noqa: E402
from ablab.results import COLUMNS  # noqa: E402

TARGET = "table(vocab=32,order=2,seed=1,sharpness=2)"
DRAFT = "draft(temper=1.5,noise=0.2,seed=3)"
PROMPTS = ablab.load_prompts(HERE / "table_prompts.jsonl")
SEEDS = [1, 2, 3]
TOKENS = 24

ARMS = [
    Arm("greedy", "greedy"),
    Arm("greedy-again", "greedy"),
    Arm("t0.8", "sample", {"temperature": 0.8}),
    Arm("t0.8-again", "sample", {"temperature": 0.8}),
    Arm("ngram-t0", "ngram", {"temperature": 0}),
    Arm("sd", "sd", {"L": 4}, models={"draft": "d"}),
]


@pytest.fixture(scope="module")
def daemon():
    if not default_binary().exists():
        pytest.fail(f"{default_binary()} not found: build decodelabd or set DECODELAB_BUILD_DIR")
    with Daemon({"t": TARGET}, workers=2) as d:
        d.load("d", DRAFT, target="t")
        yield d
    assert d.returncode == 0  # SIGTERM stops it cleanly


@pytest.fixture(scope="module")
def result(daemon):
    return run_ab(daemon.endpoint, ARMS, PROMPTS, SEEDS, max_tokens=TOKENS)


def test_batched_seeds_give_the_same_runs(daemon, result):
    # generate_many per (prompt, arm): every row equals the one-request-per-seed run, in the same order.
    batched = run_ab(daemon.endpoint, ARMS, PROMPTS, SEEDS, max_tokens=TOKENS, batch_seeds=True)
    assert batched.config["batch_seeds"] is True
    assert len(batched.runs) == len(result.runs)
    for a, b in zip(result.runs, batched.runs):
        assert (a.arm, a.prompt_id, a.seed) == (b.arm, b.prompt_id, b.seed)
        assert a.tokens == b.tokens and a.logprobs == b.logprobs and a.stop_reason == b.stop_reason


@pytest.fixture(scope="module")
def table(result):
    return {s.arm: s for s in summarize(result)}


def tokens_by_pair(result, arm):
    return {(r.prompt_id, r.seed): r.tokens for r in result.runs_of(arm)}


def test_every_arm_runs_every_prompt_and_seed(result):
    assert [a.name for a in result.arms] == [a.name for a in ARMS] and not result.skipped
    for arm in ARMS:
        runs = result.runs_of(arm.name)
        assert sorted((r.prompt_id, r.seed) for r in runs) == sorted((p.id, s) for p in PROMPTS for s in SEEDS)
        for r in runs:  # the table model has no eos
            assert r.stop_reason == "max_tokens" and len(r.tokens) == TOKENS and len(r.logprobs) == TOKENS
            assert all(lp <= 1e-6 for lp in r.logprobs)


def test_greedy_is_deterministic_and_arms_with_the_same_seed_agree(result, table):
    greedy = tokens_by_pair(result, "greedy")
    for p in PROMPTS:
        assert len({tuple(greedy[(p.id, s)]) for s in SEEDS}) == 1, p.id  # the seed does not matter
    assert tokens_by_pair(result, "greedy-again") == greedy
    # Same decoder, parameters and seed: the same random numbers, so the same tokens and logprobs.
    sampled, again = result.runs_of("t0.8"), result.runs_of("t0.8-again")
    assert [r.tokens for r in sampled] == [r.tokens for r in again]
    assert [lp for r in sampled for lp in r.logprobs] == pytest.approx([lp for r in again for lp in r.logprobs])
    assert any(len({tuple(r.tokens) for r in sampled if r.prompt_id == p.id}) > 1 for p in PROMPTS)  # seeds do matter
    assert table["greedy-again"].match == 1.0
    assert table["t0.8"].match < 1.0
    assert table["greedy"].match is None  # the baseline itself


def test_speculative_arms(result, table):
    # ngram at temperature 0 verifies against the argmax: greedy's tokens, fewer target calls.
    assert table["ngram-t0"].match == 1.0
    assert table["ngram-t0"].tok_per_call > 1.0
    assert table["ngram-t0"].mean_logprob == pytest.approx(table["greedy"].mean_logprob, abs=1e-5)
    sd = table["sd"]
    assert 0.0 < sd.acceptance < 1.0
    assert sd.tok_per_call > 1.0 and sd.target_calls < TOKENS
    for name in ("greedy", "t0.8"):  # autoregressive: one target call per token, no proposals
        assert table[name].tok_per_call == 1.0 and table[name].target_calls == TOKENS
        assert table[name].acceptance is None


def test_summary_numbers_follow_from_the_runs(result, table):
    for arm in ARMS:
        runs, s = result.runs_of(arm.name), table[arm.name]
        tokens = sum(len(r.tokens) for r in runs)
        calls = sum(r.stats["target_calls"] for r in runs)
        proposed = sum(r.stats["tokens_proposed"] for r in runs)
        accepted = sum(r.stats["tokens_accepted"] for r in runs)
        logprobs = [lp for r in runs for lp in r.logprobs]
        assert s.runs == len(runs) and s.tokens == tokens == sum(r.stats["tokens_generated"] for r in runs)
        assert s.tok_per_call == pytest.approx(tokens / calls)
        assert s.target_calls == pytest.approx(calls / len(runs))
        assert s.acceptance == (pytest.approx(accepted / proposed) if proposed else None)
        assert s.mean_logprob == pytest.approx(sum(logprobs) / len(logprobs))
        assert s.ppl == pytest.approx(math.exp(-s.mean_logprob)) and s.ppl >= 1.0
        assert 0.0 < s.distinct_1 <= 1.0 and 0.0 < s.distinct_2 <= 1.0
        assert s.tok_s > 0 and s.decode_tok_s >= s.tok_s
        assert s.stop_reasons == {"max_tokens": len(runs)}
    # Greedy takes the most likely token everywhere, so it is the most likely arm.
    assert table["greedy"].mean_logprob > table["t0.8"].mean_logprob


def test_distinct_n():
    assert ablab.distinct_n([[1, 2, 1, 2]], 1) == 0.5
    assert ablab.distinct_n([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)
    assert ablab.distinct_n([[1, 2], [1, 2]], 2) == 0.5  # pooled over generations
    assert ablab.distinct_n([[1]], 2) is None


def test_table_json_and_csv(result, tmp_path):
    summaries = summarize(result, baseline="greedy")
    text = ablab.format_table(summaries)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["arm", "decoder", "runs"] and len(lines) == 2 + len(ARMS) + 1
    assert lines[2].split()[:3] == ["greedy", "greedy", str(len(PROMPTS) * len(SEEDS))]
    ablab.write_json(tmp_path / "ab.json", result, summaries)
    doc = ablab.read_json(tmp_path / "ab.json")
    assert [s["arm"] for s in doc["summary"]] == [a.name for a in ARMS]
    assert len(doc["runs"]) == len(ARMS) * len(PROMPTS) * len(SEEDS)
    assert doc["config"]["seeds"] == SEEDS and doc["arms"][5]["models"] == {"draft": "d"}
    ablab.write_csv(tmp_path / "ab.csv", summaries)
    rows = list(csv.DictReader(open(tmp_path / "ab.csv")))
    assert [r["arm"] for r in rows] == [a.name for a in ARMS]
    assert float(rows[5]["tok_per_call"]) == pytest.approx(summaries[5].tok_per_call)
    assert rows[0]["acceptance"] == ""


def test_jsonl_has_one_row_per_run_and_reads_back(result, tmp_path):
    path = ablab.write_jsonl(tmp_path / "ab.jsonl", result)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == len(ARMS) * len(PROMPTS) * len(SEEDS)
    assert all(list(r) == COLUMNS for r in rows)  # the same columns on every line, for a data frame
    assert {(r["arm"], r["prompt_id"], r["seed"]) for r in rows} == {(a.name, p.id, s) for a in ARMS for p in PROMPTS
                                                                     for s in SEEDS}
    sd = next(r for r in rows if r["arm"] == "sd")
    assert sd["tokens"] == TOKENS and sd["tokens_per_step"] == pytest.approx(TOKENS / sd["steps"])
    assert sd["nodes_per_step"] == pytest.approx(sd["proposed"] / sd["steps"]) and sd["proposed"] > 0
    assert next(r for r in rows if r["arm"] == "t0.8")["temperature"] == 0.8
    # Summaries recomputed from the file equal those of the run.
    again = ablab.read_jsonl(path)
    assert [s.to_dict() for s in summarize(again)] == [s.to_dict() for s in summarize(result)]


def test_pandas_reads_the_jsonl(result, tmp_path):
    pandas = pytest.importorskip("pandas")  # not a dependency of the project; checked where it is installed
    path = ablab.write_jsonl(tmp_path / "ab.jsonl", result)
    frame = pandas.read_json(path, lines=True)
    assert list(frame.columns) == COLUMNS and len(frame) == len(result.runs)
    assert frame.groupby("arm")["tokens"].sum()["sd"] == TOKENS * len(PROMPTS) * len(SEEDS)
    assert frame["config_hash"].nunique() == 4  # greedy and t0.8 each under two names


def test_configuration_hash(result):
    hashes = result.config["config_hashes"]
    assert hashes["greedy"] == hashes["greedy-again"] and hashes["t0.8"] == hashes["t0.8-again"]  # names do not count
    assert len({hashes[a] for a in ("greedy", "t0.8", "ngram-t0", "sd")}) == 4
    assert result.config["model_specs"]["t"] == TARGET
    arm = Arm("t", "sample", {"temperature": 0.8})
    base = {"models": {"target": TARGET}, "max_tokens": 24, "template": "none", "stop_at_eos": True, "stop": []}
    assert ablab.config_hash(arm, base) == hashes["t0.8"]
    for change in ({"max_tokens": 25}, {"models": {"target": "table(vocab=32)"}}, {"stop": ["x"]}):
        assert ablab.config_hash(arm, {**base, **change}) != hashes["t0.8"], change
    assert ablab.config_hash(Arm("t", "sample", {"temperature": 0.9}), base) != hashes["t0.8"]
    for h in hashes.values():  # never a number to a JSON reader that guesses types
        assert h.startswith("cfg-") and len(h) == 20
        with pytest.raises(ValueError):
            float(h)


def test_scored_runs_get_mcnemar_against_the_baseline(daemon):
    arms = [Arm("greedy", "greedy"), Arm("t1", "sample", {"temperature": 1.0}), Arm("t2", "sample", {"temperature": 2.0})]

    def score(prompt, run):  # a made-up pass/fail verdict: the output repeats none of its first tokens
        return len(set(run.tokens[:6])) == 6

    r = run_ab(daemon.endpoint, arms, PROMPTS, list(range(1, 9)), max_tokens=8, score=score)
    assert all(run.passed == score(None, run) for run in r.runs)
    found = [c for c in ablab.compare_arms(ablab.run_rows(r), "greedy") if c.metric == "pass@1"]
    assert [c.arm for c in found] == ["t1", "t2"]
    for c in found:
        base = {(x.prompt_id, x.seed): x.passed for x in r.runs_of("greedy")}
        mine = {(x.prompt_id, x.seed): x.passed for x in r.runs_of(c.arm)}
        only_arm = sum(1 for k in base if mine[k] and not base[k])
        only_base = sum(1 for k in base if base[k] and not mine[k])
        assert (c.mcnemar.first_only, c.mcnemar.second_only) == (only_base, only_arm)
        assert c.estimate == pytest.approx((only_arm - only_base) / len(base))
        assert c.p_adjusted >= c.p_value and c.family_size == 2


def test_command_line_report_writes_jsonl_comparisons_and_plots(daemon, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    p = argparse.ArgumentParser()
    add_run_arguments(p)
    args = p.parse_args(["--prompts", str(HERE / "table_prompts.jsonl"), "--seeds", "1,2", "--max-tokens", "12",
                         "--draft", "d", "--jsonl", str(tmp_path / "ab.jsonl"), "--json", str(tmp_path / "ab.json"),
                         "--bootstrap", "500", "--quiet"])
    run_and_report(daemon.endpoint, [Arm("greedy", "greedy"), Arm("sd", "sd", {"L": 4})], args)
    out = capsys.readouterr().out
    assert "against 'greedy':" in out and "paired bootstrap over prompts (500 resamples, seed 0)" in out
    assert any(line.split()[:3] == ["sd", "greedy", "tok/call"] for line in out.splitlines())
    assert len((tmp_path / "ab.jsonl").read_text().splitlines()) == 2 * len(PROMPTS) * 2
    assert {c["metric"] for c in json.loads((tmp_path / "ab.json").read_text())["comparisons"]} >= {"tok/s", "tok/call"}
    for name in ("ab.tok_per_step.png", "ab.speedup.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name


def test_optional_arms_are_skipped_and_required_ones_fail(daemon):
    arms = [Arm("greedy", "greedy"), Arm("future", "no_such_decoder", optional=True),
            Arm("bad-chain", "sample", {"chain": "no_such_sampler"}, optional=True),
            Arm("bad-param", "sample", {"temprature": 0.5}, optional=True)]
    r = run_ab(daemon.endpoint, arms, PROMPTS[:1], [1], max_tokens=4)
    assert [a.name for a in r.arms] == ["greedy"]
    assert [s.arm for s in r.skipped] == ["future", "bad-chain", "bad-param"]
    assert "no_such_decoder" in r.skipped[0].reason and "temprature" in r.skipped[2].reason
    with pytest.raises(ArmRejected, match="no_such_decoder"):
        run_ab(daemon.endpoint, [Arm("future", "no_such_decoder")], PROMPTS[:1], [1], max_tokens=4)


def test_arm_specs():
    assert parse_arm("t0.7=sample:temperature=0.7,top_p=0.9") == Arm("t0.7", "sample", {"temperature": 0.7, "top_p": 0.9})
    assert parse_arm("sd:L=4@draft=d") == Arm("sd", "sd", {"L": 4}, models={"draft": "d"})
    assert parse_arm("x=sample:chain=top_k(k=5)").params == {"chain": "top_k(k=5)"}
    with pytest.raises(ValueError):
        parse_arm("sample:temperature")
    with pytest.raises(ValueError, match="unique"):
        load_arms(["greedy", "greedy"])
    main_arms = load_arms(EXPERIMENTS / "arms" / "main.json")
    assert main_arms[0].name == "greedy" and all(a.optional for a in main_arms if a.decoder not in
                                                 ("greedy", "sample", "ngram") or "chain" in a.params)


def main_job(*args):
    env = dict(os.environ, DECODELAB_BUILD_DIR=str(default_binary().parents[1]))
    return [sys.executable, "-u", str(EXPERIMENTS / "main_job.py"), "--model", TARGET,
            "--prompts", str(HERE / "table_prompts.jsonl"), "--template", "none", *args], env


def test_main_job_prints_both_tables(tmp_path):
    cmd, env = main_job("--seeds", "1", "--max-tokens", "8", "--analytic-tokens", "16", "--json", str(tmp_path / "m.json"))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "daemon exit status 0" in out.stdout
    for arm in ("greedy", "top_p", "min_p", "ngram-greedy", "ngram-top_p", "sd", "specinfer", "spectr", "dyspec"):
        assert any(line.split()[:1] == [arm] for line in out.stdout.splitlines()), arm
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["summary"][0]["arm"] == "greedy" and len(doc["runs"]) == 3 * len(doc["arms"])
    assert {s["arm"]: s["match"] for s in doc["summary"]}["ngram-greedy"] == 1.0


def test_main_job_stops_its_daemon_on_sigterm():
    cmd, env = main_job("--seeds", ",".join(map(str, range(1, 200))), "--max-tokens", "4096", "--no-analytic")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("decodelabd at ipc://"), line + proc.stderr.read()
        socket_dir = pathlib.Path(line.split()[2].rstrip(";")[len("ipc://"):]).parent
        assert socket_dir.exists()
        time.sleep(0.3)  # generating now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not socket_dir.exists()  # the daemon was stopped and its directory removed
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert str(socket_dir).encode() not in cmdline.read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
