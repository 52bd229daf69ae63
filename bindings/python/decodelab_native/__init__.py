"""decodelab's sampler chains and speculative verification rules on numpy arrays.

A thin layer over decodelab's C API (libdecodelab.so, docs/c-api.md), for plugging decodelab's
samplers and verification rules into an engine that runs in Python (HF transformers, a custom
loop)::

    import numpy as np
    import decodelab_native as dn

    chain = dn.Chain("top_k(k=40),temperature(t=0.7)")
    token = chain.sample(logits.astype(np.float32), seed=1, step=position)
    chain.accept(token)

    accepted, token = dn.verify("rrs_iid", p, q, np.array([draft], np.int32),
                                np.array([u], np.float64), residual_u)

Arrays are 1-D numpy arrays: float32 logits and laws, int32 candidates, float64 uniforms; arrays
that are only read are converted when needed, while Chain.apply, which writes its logits in place,
accepts only a C-contiguous float32 array (TypeError otherwise). Errors raise ValueError (bad arguments, bad specs), LookupError (unknown names),
ArithmeticError (NaN logits, no mass) or RuntimeError, with the library's message.
"""

from ._native import (  # noqa: F401
    ABI_VERSION,
    STREAM_ACCEPT,
    STREAM_DRAFT,
    STREAM_RESIDUAL,
    STREAM_SAMPLE,
    Chain,
    Model,
    abi_version,
    decoders,
    generate,
    kseq_rho,
    philox_uniforms,
    residual,
    samplers,
    stream,
    verify,
    verify_seeded,
    version,
)

__all__ = [
    "ABI_VERSION",
    "STREAM_ACCEPT",
    "STREAM_DRAFT",
    "STREAM_RESIDUAL",
    "STREAM_SAMPLE",
    "Chain",
    "Model",
    "abi_version",
    "decoders",
    "generate",
    "kseq_rho",
    "philox_uniforms",
    "residual",
    "samplers",
    "stream",
    "verify",
    "verify_seeded",
    "version",
]
