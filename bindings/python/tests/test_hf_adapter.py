"""decodelab_native.hf without torch: the LogitsProcessor on numpy stand-ins for transformers'
tensors, and the HF model wrapper over a numpy stand-in for a causal LM (same call shape:
model(input_ids=..., attention_mask=...).logits). The real transformers/torch runs are in the
opt-in adapters suite (scripts/test adapters)."""

import types

import numpy as np
import pytest

import decodelab_native as dn
from decodelab_native.hf import DecodelabLogitsProcessor, HFModel, generate


def test_logits_processor_applies_the_chain_to_every_row():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 50)).astype(np.float32)
    ids = np.zeros((3, 4), dtype=np.int64)
    spec = "top_k(k=5),top_w(gamma=0),temperature(t=0.5)"
    out = DecodelabLogitsProcessor(spec)(ids, scores)
    for row in range(3):
        want = scores[row].copy()
        dn.Chain(spec).apply(want)
        np.testing.assert_array_equal(out[row], want)
    assert np.all(np.isfinite(out).sum(axis=1) <= 5)
    assert np.isfinite(scores).all()  # the input is not modified


def test_logits_processor_selection_and_accept_follow_the_chain():
    rng = np.random.default_rng(1)
    processor = DecodelabLogitsProcessor("top_p(p=0.9),dist(seed=4)")
    reference = dn.Chain("top_p(p=0.9),dist(seed=4)")
    ids = np.array([[1, 2]], dtype=np.int64)
    for step in range(6):
        scores = rng.normal(size=(1, 30)).astype(np.float32)
        out = processor(ids, scores)
        want = reference.apply(scores[0].copy())
        assert want >= 0 and np.isfinite(out[0]).sum() == 1 and out[0, want] == 0.0
        reference.accept(want)
        ids = np.concatenate([ids, [[want]]], axis=1)  # what transformers shows at the next call
    # A shorter input_ids is a new generation: the chains start over.
    again = processor(np.array([[1, 2]]), np.zeros((1, 30), np.float32))
    assert np.isfinite(again[0]).sum() == 1


def test_logits_processor_errors():
    with pytest.raises(LookupError, match="no_such_sampler"):
        DecodelabLogitsProcessor("no_such_sampler")
    with pytest.raises(ValueError, match="embedding"):
        DecodelabLogitsProcessor("top_w(gamma=1)")(np.zeros((1, 1)), np.zeros((1, 8), np.float32))


class FakeCausalLM:
    """Stands in for an HF causal LM: logits at position t depend on tokens t and t - 1 (padding
    positions hold garbage, as a real model's would, so the wrapper must not read them)."""

    def __init__(self, vocab, seed):
        rng = np.random.default_rng(seed)
        self.now = rng.normal(size=(vocab, vocab)).astype(np.float32)
        self.before = rng.normal(size=(vocab, vocab)).astype(np.float32)
        self.config = types.SimpleNamespace(vocab_size=vocab, eos_token_id=None, _name_or_path=f"fake-{seed}")
        self.calls = 0

    def logits_after(self, context):
        out = self.now[context[-1]].copy()
        if len(context) > 1:
            out += self.before[context[-2]]
        return out

    def __call__(self, input_ids, attention_mask):
        self.calls += 1
        ids = np.asarray(input_ids)
        logits = self.now[ids] + np.concatenate([np.zeros_like(self.now[ids[:, :1]]), self.before[ids[:, :-1]]], axis=1)
        logits[np.asarray(attention_mask) == 0] = np.nan  # padding: never to be read
        return types.SimpleNamespace(logits=logits)


class Direct:
    """The reference: the same function evaluated path by path from the full context."""

    def __init__(self, fake):
        self.fake, self.vocab_size, self.committed, self.pending = fake, fake.config.vocab_size, {}, {}

    def new_sequence(self, seq):
        self.committed[seq] = []

    def fork(self, parent, child):
        self.committed[child] = list(self.committed[parent])

    def free_sequence(self, seq):
        del self.committed[seq]

    def evaluate(self, seq, tokens, parents):
        paths, rows = [], []
        for t, p in zip(tokens.tolist(), parents.tolist()):
            paths.append((paths[p] if p >= 0 else self.committed[seq]) + [t])
            rows.append(self.fake.logits_after(paths[-1]))
        self.pending[seq] = tokens.tolist()
        return np.array(rows)

    def commit(self, seq, path):
        self.committed[seq].extend(self.pending[seq][i] for i in path)

    def rollback(self, seq, length):
        del self.committed[seq][length:]


def test_hf_model_wrapper_runs_speculative_decoders_exactly_like_a_direct_model():
    target, draft = FakeCausalLM(16, 1), FakeCausalLM(16, 2)
    prompt = np.array([[3, 5, 7]])
    for decoder in ["spectr(k=3,L=2,temperature=0.8)", "sd(L=3)"]:
        got, got_stats = generate(target, draft, prompt, decoder=decoder, max_new_tokens=12, seed=2,
                                  tensor=np.asarray)
        want, want_stats = dn.generate(decoder, dn.Model.from_python(Direct(target)), prompt[0].astype(np.int32),
                                       draft=dn.Model.from_python(Direct(draft)), seed=2, max_new_tokens=12)
        np.testing.assert_array_equal(got, want)
        assert got_stats == want_stats
    assert target.calls > 0 and draft.calls > 0
    wrapped = HFModel(target, tensor=np.asarray)
    assert wrapped.vocab_size == 16 and wrapped.eos == -1 and wrapped.name == "fake-1"


class FakeEmbeddingModel:
    """Stands in for a transformers model's get_input_embeddings().weight (a torch-like tensor)."""

    class _Tensor:
        def __init__(self, array):
            self._array = array

        def detach(self):
            return self

        def float(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self._array

    def __init__(self, embeddings):
        self._weight = types.SimpleNamespace(weight=self._Tensor(embeddings))

    def get_input_embeddings(self):
        return self._weight


def test_logits_processor_binds_top_w_to_the_models_embeddings():
    rng = np.random.default_rng(3)
    vocab, dim = 60, 8
    embeddings = rng.normal(size=(vocab, dim)).astype(np.float32)
    spec = "top_w(gamma=1.5)"
    ids = np.zeros((2, 3), dtype=np.int64)
    scores = rng.normal(size=(2, vocab)).astype(np.float32)
    out = DecodelabLogitsProcessor(spec, model=FakeEmbeddingModel(embeddings))(ids, scores)
    same = DecodelabLogitsProcessor(spec, embeddings=embeddings)(ids, scores)
    np.testing.assert_array_equal(out, same)
    for row in range(2):
        want = scores[row].copy()
        chain = dn.Chain(spec)
        chain.bind_embeddings(embeddings)
        chain.apply(want)
        np.testing.assert_array_equal(out[row], want)
    with pytest.raises(ValueError, match="not both"):
        DecodelabLogitsProcessor(spec, model=FakeEmbeddingModel(embeddings), embeddings=embeddings)


def test_bound_geometry_changes_what_top_w_keeps():
    # With gamma > 0 the kept set depends on the embeddings: two different geometries must give
    # different kept sets on some logits (if binding were ignored they could not differ). A warm
    # start of p0 = 0.5 leaves tokens outside the first crop, where the potential acts (at the
    # default p0 = 0.999 nearly the whole pool starts inside it; docs/top_w.md).
    rng = np.random.default_rng(5)
    vocab, dim = 80, 6
    a, b = (rng.normal(size=(vocab, dim)).astype(np.float32) for _ in range(2))
    differ = 0
    for trial in range(20):
        logits = rng.normal(scale=0.7, size=vocab).astype(np.float32)
        kept = []
        for e in (a, b):
            chain = dn.Chain("top_w(lambda=2.2,beta=5,gamma=3,p0=0.5)")
            chain.bind_embeddings(e)
            x = logits.copy()
            chain.apply(x)
            kept.append(frozenset(np.flatnonzero(np.isfinite(x))))
        differ += kept[0] != kept[1]
    assert differ > 0
    with pytest.raises(ArithmeticError, match="token 2"):
        bad = a.copy()
        bad[2, 1] = np.nan
        dn.Chain("top_w(gamma=3)").bind_embeddings(bad)
