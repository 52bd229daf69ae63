"""table(file=...) through decodelabd and the Python client: the example pair of explicit tables
(examples/tables) loaded from the daemon's model directory as target and draft of speculative
decoders, and the errors a client gets for a missing, wrong or outside file."""

import shutil

import pytest

import decodelab
from conftest import ROOT, start_daemon, stop_daemon

TABLES = ROOT / "examples" / "tables"


@pytest.fixture(scope="module")
def table_daemon(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    for name in ("target.json", "draft.json"):
        shutil.copy(TABLES / name, models / name)
    (models / "bad.json").write_text('{"vocab": 2, "contexts": [{"context": [], "probs": [0.5, -0.5]}],'
                                     ' "default": "uniform"}')
    proc, endpoint, tmp = start_daemon("--workers", "2", "--model-dir", str(models))
    yield endpoint
    stop_daemon(proc, tmp)


@pytest.fixture
def table_client(table_daemon):
    with decodelab.Client(table_daemon, timeout=10) as c:
        yield c


def test_speculative_decoders_over_the_example_tables(table_client):
    c = table_client
    info = c.load_model("pt", "table(file=target.json)")
    assert info["vocab_size"] == 6
    c.load_model("pd", "table(file=draft.json)")
    firsts = []
    for decoder in ("spectr", "sd"):
        for seed in range(30):
            r = c.generate("the", model="pt", draft="pd", decoder=decoder, seed=seed, max_tokens=4)
            assert len(r.tokens) == 4
            firsts.append(r.tokens[0])
    # After "the" the target never gives "the" (0); " dog" (2), which the draft never proposes,
    # comes from the residual: about 40% of 60 runs (fewer than 8 has probability < 1e-6).
    assert 0 not in firsts
    assert firsts.count(2) >= 8
    # The same seed through the daemon and again gives the same tokens.
    a = c.generate("the", model="pt", draft="pd", decoder="spectr", seed=3, max_tokens=6)
    b = c.generate("the", model="pt", draft="pd", decoder="spectr", seed=3, max_tokens=6)
    assert a.tokens == b.tokens
    c.unload_model("pd")
    c.unload_model("pt")


def test_table_file_errors_reach_the_client(table_client):
    c = table_client
    with pytest.raises(decodelab.NotFound, match="missing.json"):
        c.load_model("m", "table(file=missing.json)")
    with pytest.raises(decodelab.InvalidArgument, match=r"bad.json.*contexts\[0\].probs\[1\] is negative"):
        c.load_model("b", "table(file=bad.json)")
    # The model directory bounds table files as it bounds GGUF files.
    with pytest.raises(decodelab.InvalidArgument, match="outside the daemon's model directory"):
        c.load_model("o", f"table(file={TABLES / 'target.json'})")
