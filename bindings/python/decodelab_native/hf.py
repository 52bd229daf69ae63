"""decodelab for Hugging Face transformers: a LogitsProcessor over any decodelab chain, and
speculative decoding with any decodelab decoder over HF models.

    from decodelab_native.hf import DecodelabLogitsProcessor, generate

    processor = DecodelabLogitsProcessor("top_k(k=40),top_w(gamma=0),temperature(t=0.7)")
    model.generate(input_ids, logits_processor=[processor], do_sample=True)

    tokens, stats = generate(target, draft, input_ids, decoder="spectr(k=2,L=3,temperature=0.7)")

Neither needs torch at import time: the processor works on anything with torch's or numpy's
array interface, and the HF model wrapper takes the tensor constructor it should use (torch's by
default, imported on first use).
"""

import numpy as np

from ._native import Chain, Model, generate as _generate


def _to_numpy(scores):
    """(float32 numpy copy of scores, a function turning a numpy array back into scores' kind)."""
    if hasattr(scores, "detach"):  # a torch tensor
        import torch

        array = scores.detach().to("cpu", torch.float32).numpy().copy()
        return array, lambda a: torch.from_numpy(a).to(device=scores.device, dtype=scores.dtype)
    return np.array(scores, dtype=np.float32, copy=True), lambda a: a.astype(np.asarray(scores).dtype, copy=False)


class DecodelabLogitsProcessor:
    """A transformers LogitsProcessor that applies a decodelab sampler chain to each row.

    spec: a chain spec ("top_k(k=40),temperature(t=0.7)", "top_w(gamma=0)", ... as
    decodelab_native.Chain takes). Each batch row gets its own chain (chains have state: dist
    counts steps), and the token each row emitted, which transformers shows the processor at the
    next call as input_ids[:, -1], is passed to the chain's accept(). Tokens the chain drops
    become -inf; when a terminal sampler of the chain (greedy, dist) selects a token, every other
    token becomes -inf, so transformers' greedy search or sampling emits it.

    Top-W with gamma > 0 needs the model's token embeddings: pass the transformers model as
    `model` (its input embedding matrix is bound to the chain once, here), or `embeddings`, a
    [vocab, dim] array. Without either, such a chain fails on the first call with ValueError.
    """

    def __init__(self, spec, model=None, embeddings=None):
        self.spec = spec
        self._prototype = Chain(spec)
        if model is not None and embeddings is not None:
            raise ValueError("DecodelabLogitsProcessor: give model or embeddings, not both")
        if model is not None:
            embeddings = model.get_input_embeddings().weight.detach().float().cpu().numpy()
        if embeddings is not None:
            self._prototype.bind_embeddings(np.ascontiguousarray(embeddings, dtype=np.float32))
        self._chains = None
        self._length = None

    def __call__(self, input_ids, scores):
        logits, back = _to_numpy(scores)
        ids = np.asarray(input_ids.detach().cpu() if hasattr(input_ids, "detach") else input_ids)
        rows = logits.shape[0]
        if self._chains is None or len(self._chains) != rows or ids.shape[1] <= self._length:
            # A new generation (or a new batch): fresh chains.
            self._chains = [self._prototype.clone() for _ in range(rows)]
        else:
            for chain, token in zip(self._chains, ids[:, -1]):
                chain.accept(int(token))
        self._length = ids.shape[1]
        for chain, row in zip(self._chains, logits):
            selected = chain.apply(row)
            if selected >= 0:
                row[:] = -np.inf
                row[selected] = 0.0
        return back(logits)


class HFModel:
    """An HF causal LM as a decodelab Python model (see decodelab_native.Model.from_python).

    Reference implementation without a KV cache: evaluate() runs the model once over every
    root-to-node path of the tree (committed tokens + path, right-padded into one batch) and
    takes each path's last logits. Exact, and slow for long contexts; it is what lets any decodelab
    decoder (spectr, sd, specinfer, ...) run over HF models.

    model: callable as model(input_ids=..., attention_mask=...) returning an object with .logits
    of shape (batch, length, vocab) (any transformers AutoModelForCausalLM). tensor: builds the
    model's input from a numpy int64 array (default torch.as_tensor on the model's device).
    """

    def __init__(self, model, vocab_size=None, eos=None, tensor=None, name=None):
        self.model = model
        config = getattr(model, "config", None)
        self.vocab_size = int(vocab_size if vocab_size is not None else config.vocab_size)
        eos_id = eos if eos is not None else getattr(config, "eos_token_id", None)
        if isinstance(eos_id, (list, tuple)):
            eos_id = eos_id[0] if eos_id else None
        self.eos = -1 if eos_id is None else int(eos_id)
        self.name = name or getattr(config, "_name_or_path", None) or type(model).__name__
        self._tensor = tensor
        self.committed = {}
        self.pending = {}

    def _as_input(self, array):
        if self._tensor is not None:
            return self._tensor(array)
        import torch

        device = getattr(self.model, "device", "cpu")
        return torch.as_tensor(array, device=device)

    def new_sequence(self, seq):
        self.committed[seq] = []

    def fork(self, parent, child):
        self.committed[child] = list(self.committed[parent])

    def free_sequence(self, seq):
        del self.committed[seq]
        self.pending.pop(seq, None)

    def evaluate(self, seq, tokens, parents):
        prefix = self.committed[seq]
        paths = []
        for i in range(len(tokens)):
            parent = int(parents[i])
            paths.append((paths[parent] if parent >= 0 else prefix) + [int(tokens[i])])
        self.pending[seq] = (list(map(int, tokens)), list(map(int, parents)))
        lengths = [len(p) for p in paths]
        width = max(lengths)
        ids = np.zeros((len(paths), width), dtype=np.int64)
        mask = np.zeros((len(paths), width), dtype=np.int64)
        for row, path in enumerate(paths):
            ids[row, : len(path)] = path
            mask[row, : len(path)] = 1
        out = self.model(input_ids=self._as_input(ids), attention_mask=self._as_input(mask))
        logits = out.logits
        if hasattr(logits, "detach"):
            logits = logits.detach().float().cpu().numpy()
        logits = np.asarray(logits, dtype=np.float32)
        rows = logits[np.arange(len(paths)), np.array(lengths) - 1, : self.vocab_size]
        return np.ascontiguousarray(rows)

    def commit(self, seq, path):
        tokens, _ = self.pending.pop(seq)
        self.committed[seq].extend(tokens[int(i)] for i in path)

    def rollback(self, seq, length):
        del self.committed[seq][int(length):]
        self.pending.pop(seq, None)


def generate(target, draft, input_ids, decoder="spectr(k=2,L=3)", max_new_tokens=64, seed=0, stop_at_eos=True,
             tensor=None):
    """Speculative decoding (any decodelab decoder) with an HF target and an HF draft.

    target, draft: HF causal LMs (or HFModel instances, or decodelab_native.Model objects);
    draft may be None for decoders without one. input_ids: the prompt (a 1-D sequence of ids or a
    (1, n) tensor). Returns (generated int32 numpy array, stats dict) as
    decodelab_native.generate does.
    """

    def as_model(m):
        if m is None or isinstance(m, Model):
            return m
        return Model.from_python(m if isinstance(m, HFModel) else HFModel(m, tensor=tensor))

    ids = input_ids.detach().cpu().numpy() if hasattr(input_ids, "detach") else np.asarray(input_ids)
    prompt = np.ascontiguousarray(ids.reshape(-1), dtype=np.int32)
    return _generate(decoder, as_model(target), prompt, draft=as_model(draft), seed=seed,
                     max_new_tokens=max_new_tokens, stop_at_eos=stop_at_eos)
