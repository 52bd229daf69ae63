"""decodelab_native against what the library defines: in-place chains, sampling, the verification
rules on hand-checked cases and on their exact law, the catalogue, and errors as exceptions."""

import math

import numpy as np
import pytest

import decodelab_native as dn


def test_version():
    assert dn.abi_version() == dn.ABI_VERSION == 1
    assert dn.version().count(".") == 2


def test_apply_in_place_truncates_and_rescales():
    logits = np.array([1.0, 3.0, 2.0, 3.0, -np.inf, 0.5], dtype=np.float32)
    chain = dn.Chain("top_k(k=3),temperature(t=0.5)")
    assert len(chain) == 2
    assert str(chain).startswith("top_k(k=3) -> temperature(")
    assert chain.apply(logits) == -1
    np.testing.assert_array_equal(logits, np.array([-np.inf, 6, 4, 6, -np.inf, -np.inf], dtype=np.float32))


def test_greedy_selects_lowest_id_on_ties():
    logits = np.array([0.0, 2.0, 2.0, 1.0], dtype=np.float32)
    assert dn.Chain("greedy").apply(logits) == 1


def test_probs_match_numpy_softmax_of_kept_tokens():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=500).astype(np.float32)
    probs = dn.Chain("top_k(k=10)").probs(logits)
    assert probs.dtype == np.float32 and probs.shape == (500,)
    top = np.argsort(-logits, kind="stable")[:10]
    expected = np.zeros(500)
    expected[top] = np.exp(logits[top] - logits[top].max())
    expected /= expected.sum()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    assert np.count_nonzero(probs) == 10


def test_sample_is_keyed_by_seed_and_step_and_follows_the_law():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32))
    chain = dn.Chain("")
    first = [chain.sample(logits, seed=5, step=s) for s in range(4000)]
    again = [chain.sample(logits, seed=5, step=s) for s in range(4000)]
    assert first == again
    counts = np.bincount(first, minlength=4) / len(first)
    # 4000 draws: each frequency within 5 standard deviations of its probability.
    for k, p in enumerate([0.1, 0.2, 0.3, 0.4]):
        assert abs(counts[k] - p) < 5 * math.sqrt(p * (1 - p) / 4000)


def test_sample_uses_the_documented_philox_uniform():
    logits = np.zeros(1000, dtype=np.float32)  # uniform law: token = ceil(u * 1000) - 1
    for step in range(20):
        (u,) = dn.philox_uniforms(9, dn.STREAM_SAMPLE, step, 1)
        assert dn.Chain("").sample(logits, seed=9, step=step) == math.ceil(u * 1000) - 1


def test_dist_state_accept_reset_clone():
    logits = np.random.default_rng(1).normal(size=200).astype(np.float32)
    chain = dn.Chain("top_p(p=0.95),dist(seed=4)")
    run = []
    for _ in range(10):
        token = chain.apply(logits.copy())
        run.append(token)
        chain.accept(token)
    copy = chain.clone()
    chain.reset()
    replay = []
    for _ in range(10):
        token = chain.apply(logits.copy())
        replay.append(token)
        chain.accept(token)
    assert replay == run
    assert copy.apply(logits.copy()) == chain.apply(logits.copy())


def test_from_params_builds_the_decoder_chain():
    assert str(dn.Chain.from_params("temperature=0.7,top_k=20")).startswith("top_k(k=20)")


def test_standard_speculative_sampling_accept_and_residual():
    p = np.array([0.6, 0.3, 0.1], dtype=np.float32)
    q = np.array([0.2, 0.2, 0.6], dtype=np.float32)
    cand = np.array([2], dtype=np.int32)
    assert dn.verify("rrs_iid", p, q, cand, np.array([0.1]), 0.5) == (0, 2)  # 0.06 <= 0.1
    assert dn.verify("rrs_iid", p, q, cand, np.array([0.9]), 0.5) == (-1, 0)  # residual (0.8, 0.2, 0)
    r, mass = dn.residual(p, q)
    np.testing.assert_allclose(r, [0.8, 0.2, 0.0], rtol=1e-6)
    assert mass == pytest.approx(0.5)


def test_seeded_verification_keeps_the_target_law():
    """Drafts from q verified by rrs_iid with decodelab's uniforms: the outputs follow p."""
    p = np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32)
    q = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    n = 6000
    tokens = []
    for position in range(n):
        (u,) = dn.philox_uniforms(11, dn.stream(dn.STREAM_DRAFT), position, 1)
        draft = int(np.searchsorted(np.cumsum(q.astype(np.float64)), u))
        _, token = dn.verify_seeded("rrs_iid", p, q, np.array([draft], np.int32), seed=11, position=position)
        tokens.append(token)
    freq = np.bincount(tokens, minlength=4) / n
    for k in range(4):
        assert abs(freq[k] - p[k]) < 5 * math.sqrt(p[k] * (1 - p[k]) / n)


def test_kseq_and_target_only():
    p = np.array([0.6, 0.3, 0.1], dtype=np.float32)
    q = np.array([0.2, 0.2, 0.6], dtype=np.float32)
    rho = dn.kseq_rho(p, q, 2)
    assert 1.0 <= rho <= 2.0
    accepted, token = dn.verify("kseq", p, q, np.array([0, 2], np.int32), np.array([0.5, 0.5]), 0.3, rho=rho)
    assert accepted in (-1, 0, 1) and 0 <= token < 3
    # target_only reads no q: accept x with probability p(x).
    assert dn.verify("target_only", p, None, np.array([1], np.int32), np.array([0.2]), 0.5) == (0, 1)
    assert dn.verify("target_only", p, None, np.array([1], np.int32), np.array([0.4]), 0.5) == (-1, 0)


def test_catalogue():
    samplers = {s["name"]: s for s in dn.samplers()}
    assert {"top_k", "top_p", "min_p", "temperature", "greedy", "dist"} <= samplers.keys()
    (k,) = [p for p in samplers["top_k"]["params"] if p["name"] == "k"]
    assert k["type"] == "integer" and k["default"] == "40" and k["description"].startswith("k: integer")
    decoders = {d["name"]: d for d in dn.decoders()}
    assert decoders["sd"]["roles"] == "target,draft"


def test_errors_raise_with_the_library_message():
    with pytest.raises(ValueError, match="unbalanced"):
        dn.Chain("top_k(k=3")
    with pytest.raises(LookupError, match="unknown sampler 'nope'"):
        dn.Chain("nope")
    with pytest.raises(ValueError, match="out of range"):
        dn.Chain("top_k(k=-1)")
    chain = dn.Chain("top_k(k=2)")
    bad = np.array([1.0, np.nan], dtype=np.float32)
    with pytest.raises(ArithmeticError, match="NaN"):
        chain.apply(bad)
    assert bad[0] == 1.0  # left as it was
    with pytest.raises(ValueError, match="n_vocab is 0"):
        chain.apply(np.zeros(0, dtype=np.float32))
    with pytest.raises(TypeError):
        chain.apply(np.zeros(4, dtype=np.float64))  # in place: a converted copy would be lost
    with pytest.raises(TypeError):
        chain.apply(np.zeros(8, dtype=np.float32)[::2])  # not contiguous
    # Read-only inputs convert: float64 logits give float32's result.
    np.testing.assert_array_equal(chain.probs(np.arange(4.0)), chain.probs(np.arange(4, dtype=np.float32)))
    with pytest.raises(TypeError):
        chain.apply(np.zeros((2, 2), dtype=np.float32))
    p = np.array([0.5, 0.5], dtype=np.float32)
    with pytest.raises(ValueError, match="differ in size"):
        dn.verify("rrs_iid", p, np.ones(3, np.float32) / 3, np.array([0], np.int32), np.array([0.5]), 0.5)
    with pytest.raises(ValueError, match=r"candidates\[0\] = 7"):
        dn.verify("rrs_iid", p, p, np.array([7], np.int32), np.array([0.5]), 0.5)
    with pytest.raises(ValueError, match="accept_u has 2 uniforms for 1 candidates"):
        dn.verify("rrs_iid", p, p, np.array([0], np.int32), np.array([0.5, 0.5]), 0.5)
    with pytest.raises(ValueError, match="residual_u"):
        dn.verify("rrs_iid", p, p, np.array([0], np.int32), np.array([0.5]), 0.0)
    with pytest.raises(ValueError, match="unknown verify rule 'magic'"):
        dn.verify("magic", p, p, np.array([0], np.int32), np.array([0.5]), 0.5)
    with pytest.raises(ValueError, match="q is NULL"):
        dn.verify("rrs_iid", p, None, np.array([0], np.int32), np.array([0.5]), 0.5)
    with pytest.raises(ValueError, match="gamma"):
        dn.Chain("top_w(gamma=0.5)").apply(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="k = 0"):
        dn.kseq_rho(p, p, 0)
