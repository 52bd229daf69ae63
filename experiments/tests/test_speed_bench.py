"""experiments/speed_bench.py on an analytic table model: a tiny run of two domains, two client
counts, greedy against prompt lookup (whose tokens must equal greedy's)."""

import json
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import speed_bench  # noqa: E402
from ablab import Arm, Daemon  # noqa: E402
from ablab.daemon import default_binary  # noqa: E402
from ablab.speedbench import format_domain_table, load_bench_prompts, run_level, same_tokens  # noqa: E402

TARGET = "table(vocab=32,order=2,seed=1,sharpness=2)"
PROMPTS = HERE / "speed_prompts.jsonl"


@pytest.fixture(scope="module")
def daemon():
    if not default_binary().exists():
        pytest.fail(f"{default_binary()} not found: build decodelabd or set DECODELAB_BUILD_DIR")
    with Daemon({"t": TARGET}, workers=4) as d:
        yield d


def test_prompts_load_with_their_documents_and_selections():
    prompts = load_bench_prompts(PROMPTS)
    assert [p.id for p in prompts] == ["cc", "ce", "ce2"]
    assert prompts[1].text.startswith("a b a b a b\n\na b a b c d")
    assert [p.id for p in load_bench_prompts(PROMPTS, per_domain=1)] == ["cc", "ce"]
    with pytest.raises(ValueError, match="math"):
        load_bench_prompts(PROMPTS, domains=["math"])


def test_bad_prompt_lines_are_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "prompt": "a"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*domain"):
        load_bench_prompts(bad)


def test_levels_measure_every_request(daemon):
    prompts = load_bench_prompts(PROMPTS)
    greedy = run_level(daemon.endpoint, "code_editing", Arm("greedy", "greedy"), prompts, 3,
                       roles={"target": "t"}, max_tokens=16, template="none", rounds=2)
    ngram = run_level(daemon.endpoint, "code_editing", Arm("ngram", "ngram", {"temperature": 0}), prompts, 3,
                      roles={"target": "t"}, max_tokens=16, template="none", rounds=2)
    for level in (greedy, ngram):
        assert len(level.requests) == 6 and {r.client for r in level.requests} == {0, 1, 2}
        # client i's k-th request takes prompt (i + 3k) mod 2
        assert sorted(r.prompt_id for r in level.requests) == ["ce"] * 3 + ["ce2"] * 3
        for r in level.requests:
            assert 0 < r.ttft_s <= r.total_s <= level.wall_s and len(r.tokens) > 0
        assert level.tokens == sum(len(r.tokens) for r in level.requests)
        assert level.tok_s_aggregate == pytest.approx(level.tokens / level.wall_s)
    assert greedy.accept_len == pytest.approx(1.0)  # one token per step
    assert ngram.accept_len >= 1.0
    assert same_tokens(ngram, greedy) == 6  # prompt lookup at temperature 0 reproduces greedy
    table = format_domain_table("code_editing", [greedy, ngram], baseline="greedy")
    assert "code_editing" in table and "6/6" in table and "1.00" in table


def test_command_prints_a_table_per_domain(tmp_path, capsys):
    out = tmp_path / "levels.json"
    assert speed_bench.main(["--model", TARGET, "--prompts", str(PROMPTS), "--concurrency", "1,2", "--max-tokens", "8",
                             "--template", "none", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "code_completion (prompts of" in printed and "code_editing (prompts of" in printed
    levels = json.loads(out.read_text())
    assert {(lv["domain"], lv["arm"], lv["concurrency"]) for lv in levels} == {
        (d, a, c) for d in ("code_completion", "code_editing") for a in ("greedy", "ngram") for c in (1, 2)}
    with pytest.raises(SystemExit, match="concurrency"):
        speed_bench.main(["--model", TARGET, "--prompts", str(PROMPTS), "--concurrency", "0"])


def test_full_arms_run_on_an_analytic_pair(capsys):
    # --full's arms (greedy, ngram, sd with a draft) on a table target and its analytic draft:
    # every speculative request reproduces greedy's tokens.
    assert speed_bench.main(["--full", "--model", TARGET, "--draft-model", "draft(temper=1.5,noise=0.2,seed=3)",
                             "--prompts", str(PROMPTS), "--domain", "code_editing", "--concurrency", "2",
                             "--rounds", "1", "--max-tokens", "12", "--template", "none"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("2 ")]
    assert [r[1] for r in rows] == ["greedy", "ngram", "sd"]
    assert [r[-1] for r in rows] == ["-", "2/2", "2/2"]
