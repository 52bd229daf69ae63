"""decodelab_native.Model and generate(): decoders over models decodelab loads and over Python
objects (Model.from_python), which must give the tokens of the native run; a chain through the
binding picks what the native `sample` decoder picks; exceptions in Python models surface as the
same Python exceptions."""

import json
import os
import pathlib

import numpy as np
import pytest

import decodelab_native as dn

ROOT = pathlib.Path(__file__).resolve().parents[3]
TABLES = ROOT / "examples" / "tables"


def model_file(name):
    """A real GGUF model from $DECODELAB_MODELS or the default models cache, or None."""
    directory = os.environ.get("DECODELAB_MODELS") or os.path.join(
        os.environ.get("HOME", ""), ".cache", "decodelab", "models"
    )
    path = os.path.join(directory, name)
    return path if os.path.exists(path) else None


SMOLLM2 = model_file("SmolLM2-135M-Instruct.Q4_1.gguf")


class Forwarding:
    """A Python model whose every method forwards to a model decodelab loaded."""

    def __init__(self, inner):
        self.inner = inner
        self.vocab_size = inner.vocab_size
        self.eos = inner.eos
        self.name = "python:" + inner.name
        self.ids = {}
        self.calls = 0

    def new_sequence(self, seq):
        self.calls += 1
        self.ids[seq] = self.inner.new_sequence()

    def fork(self, parent, child):
        self.calls += 1
        self.ids[child] = self.inner.fork(self.ids[parent])

    def free_sequence(self, seq):
        self.calls += 1
        self.inner.free_sequence(self.ids.pop(seq))

    def evaluate(self, seq, tokens, parents):
        self.calls += 1
        return self.inner.evaluate(self.ids[seq], tokens, parents)

    def commit(self, seq, path):
        self.calls += 1
        self.inner.commit(self.ids[seq], path)

    def rollback(self, seq, length):
        self.calls += 1
        self.inner.rollback(self.ids[seq], length)


class Bigram:
    """A model in plain numpy: next-token law = probs[last token] (probs[vocab] at the start).
    It tracks committed tokens and the pending tree itself, as a real engine would."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=np.float64)
        self.vocab_size = self.probs.shape[1]
        with np.errstate(divide="ignore"):
            self.logits = np.log(self.probs).astype(np.float32)
        self.committed = {}
        self.pending = {}

    def new_sequence(self, seq):
        self.committed[seq] = []

    def fork(self, parent, child):
        self.committed[child] = list(self.committed[parent])

    def free_sequence(self, seq):
        del self.committed[seq]
        self.pending.pop(seq, None)

    def evaluate(self, seq, tokens, parents):
        self.pending[seq] = (tokens.copy(), parents.copy())
        return self.logits[tokens]  # order 1: the row of each node's own token

    def commit(self, seq, path):
        tokens, parents = self.pending.pop(seq)
        assert all(parents[path[i]] == (path[i - 1] if i else -1) for i in range(len(path)))
        self.committed[seq].extend(int(tokens[i]) for i in path)

    def rollback(self, seq, length):
        assert length <= len(self.committed[seq])
        del self.committed[seq][length:]
        self.pending.pop(seq, None)


def bigram_table(vocab, seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(vocab, 0.5), size=vocab + 1)
    probs[:, rng.integers(vocab)] = 0.0  # some zero support
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


def write_table(path, probs):
    vocab = probs.shape[1]
    rows = [{"context": [t], "probs": probs[t].tolist()} for t in range(vocab)]
    path.write_text(json.dumps({"vocab": vocab, "order": 1, "contexts": rows, "default": probs[vocab].tolist()}))


def test_two_python_models_serve_as_target_and_draft_of_spectr(tmp_path):
    p, q = bigram_table(12, 1), bigram_table(12, 2)
    write_table(tmp_path / "p.json", p)
    write_table(tmp_path / "q.json", q)
    native_target = dn.Model(f"table(file={tmp_path / 'p.json'})")
    native_draft = dn.Model(f"table(file={tmp_path / 'q.json'})")
    target, draft = dn.Model.from_python(Bigram(p)), dn.Model.from_python(Bigram(q))
    prompt = np.array([3, 4], np.int32)
    for decoder in ["spectr(k=3,L=2,temperature=0.9)", "sd(L=3)", "specinfer(k=2,L=2)"]:
        for seed in range(3):
            want, want_stats = dn.generate(decoder, native_target, prompt, draft=native_draft, seed=seed,
                                           max_new_tokens=20)
            got, got_stats = dn.generate(decoder, target, prompt, draft=draft, seed=seed, max_new_tokens=20)
            np.testing.assert_array_equal(got, want)
            assert got_stats == want_stats
            assert got_stats["tokens_proposed"] > 0


def test_model_operations_on_a_python_model_are_validated_first():
    model = dn.Model.from_python(Bigram(bigram_table(5, 3)))
    assert model.vocab_size == 5 and model.name == "Bigram"
    seq = model.new_sequence()
    logits = model.evaluate(seq, np.array([1, 2, 3], np.int32), np.array([-1, 0, 0], np.int32))
    assert logits.shape == (3, 5) and logits.dtype == np.float32
    model.commit(seq, np.array([0, 2], np.int32))
    assert model.length(seq) == 2
    with pytest.raises(ValueError, match="not a node|parent"):
        model.commit(seq, np.array([1], np.int32))  # never reaches the Python object
    with pytest.raises(ValueError, match="5"):
        model.evaluate(seq, np.array([5], np.int32), np.array([-1], np.int32))
    child = model.fork(seq)
    model.rollback(child, 1)
    assert model.length(child) == 1 and model.length(seq) == 2
    model.free_sequence(child)
    model.free_sequence(seq)


def test_exceptions_in_python_models_surface_as_themselves():
    class Broken(Bigram):
        def __init__(self, probs, fail_after):
            super().__init__(probs)
            self.fail_after = fail_after

        def evaluate(self, seq, tokens, parents):
            self.fail_after -= 1
            if self.fail_after < 0:
                raise KeyError("evaluate broke on purpose")
            return super().evaluate(seq, tokens, parents)

    probs = bigram_table(6, 4)
    target = dn.Model.from_python(Bigram(probs))
    draft = dn.Model.from_python(Broken(probs, fail_after=2))
    prompt = np.array([1], np.int32)
    with pytest.raises(KeyError, match="evaluate broke on purpose"):
        dn.generate("spectr(k=2,L=2)", target, prompt, draft=draft, max_new_tokens=16)
    # The models are still usable afterwards, and a clean run raises nothing.
    tokens, _ = dn.generate("sample", target, prompt, max_new_tokens=4)
    assert len(tokens) == 4

    class WrongShape(Bigram):
        def evaluate(self, seq, tokens, parents):
            return np.zeros((len(tokens), self.vocab_size + 1))

    with pytest.raises(ValueError, match=r"shape \(1, 7\), expected \(1, 6\)"):
        dn.generate("sample", dn.Model.from_python(WrongShape(probs)), prompt, max_new_tokens=2)

    class NaNLogits(Bigram):
        def evaluate(self, seq, tokens, parents):
            return np.full((len(tokens), self.vocab_size), np.nan)

    with pytest.raises(ArithmeticError, match="NaN"):
        dn.generate("sample", dn.Model.from_python(NaNLogits(probs)), prompt, max_new_tokens=2)

    class NoCommit:
        vocab_size = 4
        new_sequence = fork = free_sequence = evaluate = rollback = staticmethod(lambda *a: None)

    with pytest.raises(TypeError, match="commit"):
        dn.Model.from_python(NoCommit())


def test_loaded_models_and_their_errors():
    target = dn.Model(f"table(file={TABLES / 'target.json'})")
    draft = dn.Model(f"table(file={TABLES / 'draft.json'})")
    assert target.vocab_size == 6 and target.name == "table(file=target.json)"
    np.testing.assert_array_equal(target.tokenize("the cat sat"), [0, 1, 3])
    tokens, stats = dn.generate("spectr(k=2,L=2)", target, target.tokenize("the"), draft=draft, seed=1,
                                max_new_tokens=10)
    assert len(tokens) == 10 and stats["stop_reason"] == "max_tokens"
    with pytest.raises(LookupError, match="missing.json"):
        dn.Model(f"table(file={TABLES / 'missing.json'})")
    with pytest.raises(LookupError, match="no_such_decoder"):
        dn.generate("no_such_decoder", target, np.array([0], np.int32))
    with pytest.raises(ValueError, match="draft"):
        dn.generate("spectr", target, np.array([0], np.int32))


def test_chain_through_the_binding_picks_the_native_sample_decoders_tokens():
    spec = SMOLLM2 and f"gguf(path={SMOLLM2},threads=2)"
    model = dn.Model(spec or "table(vocab=300,order=2,seed=4,sharpness=2)")
    prompt = model.tokenize("The capital of France is") if SMOLLM2 else np.array([5, 6, 7], np.int32)
    sampling = "temperature=0.8,top_k=40,top_p=0.95"
    for seed in (0, 1):
        native, _ = dn.generate(f"sample({sampling})", model, prompt, seed=seed, max_new_tokens=8,
                                stop_at_eos=False)
        chain = dn.Chain.from_params(sampling)
        seq = model.new_sequence()
        logits = model.evaluate(seq, prompt, np.arange(-1, len(prompt) - 1, dtype=np.int32))[-1]
        model.commit(seq, np.arange(len(prompt), dtype=np.int32))
        picked = []
        for i in range(8):
            token = chain.sample(logits, seed=seed, step=len(prompt) + i)
            chain.accept(token)
            picked.append(token)
            logits = model.evaluate(seq, np.array([token], np.int32), np.array([-1], np.int32))[0]
            model.commit(seq, np.array([0], np.int32))
        model.free_sequence(seq)
        assert picked == native.tolist()


@pytest.mark.skipif(SMOLLM2 is None, reason="SmolLM2-135M-Instruct.Q4_1.gguf is not in the models cache")
def test_spectr_through_python_models_over_smollm2_equals_the_native_run():
    target = dn.Model(f"gguf(path={SMOLLM2},threads=2)")
    draft = dn.Model(f"table(vocab={target.vocab_size},order=1,seed=3,sharpness=1)")
    prompt = target.tokenize("Once upon a time", add_special=True)
    decoder = "spectr(k=2,L=2,temperature=0.7)"
    want, want_stats = dn.generate(decoder, target, prompt, draft=draft, seed=5, max_new_tokens=10)
    py_target, py_draft = Forwarding(target), Forwarding(draft)
    got, got_stats = dn.generate(decoder, dn.Model.from_python(py_target), prompt,
                                 draft=dn.Model.from_python(py_draft), seed=5, max_new_tokens=10)
    np.testing.assert_array_equal(got, want)
    assert got_stats == want_stats
    assert py_target.calls > 0 and py_draft.calls > 0 and not py_target.ids and not py_draft.ids


def test_a_derived_draft_and_a_model_without_tokenizer():
    target = dn.Model("table(vocab=20,order=2,seed=2)")
    draft = dn.Model("draft(temper=1.5,noise=0.3)", target=target)
    assert draft.vocab_size == 20 and draft.name.startswith("draft(")
    with pytest.raises(ValueError, match="not a table model|analytic target"):
        dn.Model("draft(temper=1.5)", target=dn.Model.from_python(Bigram(bigram_table(20, 1))))
    with pytest.raises(RuntimeError, match="no tokenizer"):
        dn.Model.from_python(Bigram(bigram_table(4, 1))).tokenize("a")


def test_a_reward_model_role_from_python_equals_the_loaded_one(tmp_path):
    # smc's reward model as a further role: a Python model and the same table loaded natively give
    # the same tokens; without the role the decoder names it.
    p, r = bigram_table(12, 3), bigram_table(12, 4)
    write_table(tmp_path / "p.json", p)
    write_table(tmp_path / "r.json", r)
    target = dn.Model(f"table(file={tmp_path / 'p.json'})")
    native_reward = dn.Model(f"table(file={tmp_path / 'r.json'})")
    python_reward = dn.Model.from_python(Bigram(r))
    prompt = np.array([3, 4], np.int32)
    decoder = "smc(particles=4,reward_model_weight=0.8)"
    want, _ = dn.generate(decoder, target, prompt, seed=5, max_new_tokens=16, roles={"reward_model": native_reward})
    got, _ = dn.generate(decoder, target, prompt, seed=5, max_new_tokens=16, roles={"reward_model": python_reward})
    np.testing.assert_array_equal(got, want)
    assert len(want) == 16
    with pytest.raises(LookupError, match="reward_model"):
        dn.generate(decoder, target, prompt, seed=5, max_new_tokens=16)
    with pytest.raises(ValueError, match="role_names"):
        dn.generate("sample", target, prompt, roles={"target": native_reward})
