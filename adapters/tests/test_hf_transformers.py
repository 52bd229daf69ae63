"""decodelab_native.hf against real transformers and torch (opt-in adapters suite only: needs
transformers and torch, which the default suite does not install). The models are tiny Llama
models with random weights built from a config, so nothing is downloaded."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import decodelab_native as dn  # noqa: E402
from decodelab_native.hf import DecodelabLogitsProcessor, HFModel, generate  # noqa: E402


def tiny_llama(seed, vocab=96):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = transformers.LlamaForCausalLM(config).eval()
    model.generation_config.pad_token_id = 0
    return model


PROMPT = torch.tensor([[5, 17, 42, 8]])


def test_logits_processor_in_model_generate_matches_the_chain():
    model = tiny_llama(0)
    with torch.no_grad():
        out = model.generate(PROMPT, max_new_tokens=10, do_sample=False,
                             logits_processor=[DecodelabLogitsProcessor("top_k(k=5),temperature(t=0.7)")])
        plain = model.generate(PROMPT, max_new_tokens=10, do_sample=False)
    # Greedy over the top 5 after temperature is greedy.
    assert out.tolist() == plain.tolist()
    # A terminal decodelab sampler decides the token: greedy through the chain is greedy too.
    with torch.no_grad():
        chosen = model.generate(PROMPT, max_new_tokens=10, do_sample=True,
                                logits_processor=[DecodelabLogitsProcessor("greedy")])
    assert chosen.tolist() == plain.tolist()


def test_speculative_generate_at_temperature_zero_is_greedy():
    target, draft = tiny_llama(1), tiny_llama(2)
    with torch.no_grad():
        greedy = target.generate(PROMPT, max_new_tokens=12, do_sample=False)[0, PROMPT.shape[1]:].tolist()
        tokens, stats = generate(target, draft, PROMPT, decoder="spectr(k=2,L=3,temperature=0)", max_new_tokens=12,
                                 stop_at_eos=False)
    assert tokens.tolist() == greedy
    assert stats["tokens_proposed"] > 0


def test_speculative_generate_equals_decodelab_sample_on_the_same_models():
    target = tiny_llama(3)
    with torch.no_grad():
        a, _ = generate(target, None, PROMPT, decoder="sample(temperature=0.8)", max_new_tokens=8, seed=4,
                        stop_at_eos=False)
        b, _ = dn.generate("sample(temperature=0.8)", dn.Model.from_python(HFModel(target)),
                           PROMPT[0].numpy().astype(np.int32), seed=4, max_new_tokens=8, stop_at_eos=False)
    assert a.tolist() == b.tolist()
