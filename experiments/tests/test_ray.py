"""The Ray runner: a study spread over two daemons (each owned by a Ray actor on a local Ray) gives
the same rows as one daemon. Skipped when Ray is not installed (it is an opt-in requirement:
scripts/python-requirements-ray.txt)."""

import pathlib
import sys

import pytest

ray = pytest.importorskip("ray")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import ablab  # noqa: E402
from ablab import Arm, Daemon, run_ab  # noqa: E402
from ablab.daemon import default_binary  # noqa: E402
from ablab.distributed import run_ab_ray  # noqa: E402

TARGET = "table(vocab=32,order=2,seed=1,sharpness=2)"
DRAFT = ("d", "draft(temper=1.5,noise=0.2,seed=3)", "t")
PROMPTS = ablab.load_prompts(HERE / "table_prompts.jsonl")
SEEDS = [1, 2, 3]
MANY_SEEDS = list(range(1, 13))
ARMS = [
    Arm("greedy", "greedy"),
    Arm("t0.8", "sample", {"temperature": 0.8}),
    Arm("ngram-t0.8", "ngram", {"temperature": 0.8}),
    Arm("sd", "sd", {"L": 4}, models={"draft": "d"}),
    Arm("missing", "no_such_decoder", optional=True),
]


@pytest.fixture(scope="module")
def local_ray():
    if not default_binary().exists():
        pytest.fail(f"{default_binary()} not found: build decodelabd or set DECODELAB_BUILD_DIR")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield
    ray.shutdown()


def test_two_daemons_give_the_single_daemon_rows(local_ray):
    with Daemon({"t": TARGET}) as d:
        d.load(*DRAFT[:2], target=DRAFT[2])
        single = run_ab(d.endpoint, ARMS, PROMPTS, SEEDS, max_tokens=24)
    done = []
    spread = run_ab_ray({"t": TARGET}, ARMS, PROMPTS, SEEDS, daemons=2, workers=2, drafts=[DRAFT], max_tokens=24,
                        progress=lambda n, total, run: done.append((n, total)))
    assert [a.name for a in spread.arms] == [a.name for a in single.arms] == ["greedy", "t0.8", "ngram-t0.8", "sd"]
    assert [s.arm for s in spread.skipped] == ["missing"]
    assert len(spread.runs) == len(single.runs) == len(PROMPTS) * len(SEEDS) * 4
    for a, b in zip(single.runs, spread.runs):
        assert (a.arm, a.prompt_id, a.seed) == (b.arm, b.prompt_id, b.seed)
        assert a.tokens == b.tokens and a.logprobs == b.logprobs and a.stop_reason == b.stop_reason
        assert a.text == b.text and a.stats.get("target_calls") == b.stats.get("target_calls")
    assert spread.config["config_hashes"] == single.config["config_hashes"]
    # Two actors, two daemon processes; the generations were shared between them.
    assert spread.config["ray"]["daemons"] == 2 and len(spread.config["ray"]["where"]) == 2
    assert done[-1] == (len(spread.runs), len(spread.runs))


def test_a_required_arm_the_daemons_refuse_fails_the_study(local_ray):
    with pytest.raises(ablab.ArmRejected, match="no_such_decoder"):
        run_ab_ray({"t": TARGET}, [Arm("bad", "no_such_decoder")], PROMPTS, SEEDS, daemons=1, max_tokens=4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="daemons"):
        run_ab_ray({"t": TARGET}, ARMS, PROMPTS, SEEDS, daemons=0)


def test_command_line_with_two_daemons(local_ray, tmp_path, capsys):
    from ablab.cli import main
    out = tmp_path / "rows.jsonl"
    assert main(["--load", f"t={TARGET}", "--daemons", "2", "--arm", "greedy", "--arm", "t0.8=sample:temperature=0.8",
                 "--prompts", str(HERE / "table_prompts.jsonl"), "--seeds", "1,2", "--max-tokens", "8", "--quiet",
                 "--no-plots", "--jsonl", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "greedy" in printed and "t0.8" in printed
    rows = ablab.read_rows(out)
    assert len(rows) == len(PROMPTS) * 2 * 2
    with pytest.raises(SystemExit, match="--endpoint"):
        main(["--endpoint", "ipc:///nonexistent", "--daemons", "2", "--arm", "greedy"])


def _daemon_pids(marker: str):
    """Process ids of running decodelabd processes whose command line contains ``marker``."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "decodelabd" in cmd and marker in cmd:
                pids.append(int(entry.name))
    return pids


def test_a_daemon_that_dies_is_restarted_and_its_generations_retried(local_ray):
    import os
    import signal
    target = "table(vocab=32,order=2,seed=5,sharpness=2)"  # only this test's daemons run this model
    arms = [Arm("greedy", "greedy"), Arm("t0.8", "sample", {"temperature": 0.8})]
    with Daemon({"t": target}) as d:
        single = run_ab(d.endpoint, arms, PROMPTS, MANY_SEEDS, max_tokens=48)
    killed = []

    def kill_one_daemon(n, total, run):
        # After a few generations (both actors have started by then), SIGKILL one daemon.
        if n >= 4 and not killed:
            pids = _daemon_pids(target)
            assert pids
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    spread = run_ab_ray({"t": target}, arms, PROMPTS, MANY_SEEDS, daemons=2, workers=2, max_tokens=48,
                        progress=kill_one_daemon)
    assert killed
    assert [(r.arm, r.prompt_id, r.seed, r.tokens) for r in spread.runs] == \
           [(r.arm, r.prompt_id, r.seed, r.tokens) for r in single.runs]
    assert not _daemon_pids(target)  # the restarted actor's daemon was stopped too
