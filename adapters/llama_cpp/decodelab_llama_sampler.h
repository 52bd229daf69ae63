/*
 * A llama.cpp sampler (llama_sampler_i) over a decodelab sampler chain, so any decodelab chain,
 * Top-W with gamma = 0 included, runs inside a llama.cpp sampler chain:
 *
 *   struct llama_sampler* chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
 *   struct llama_sampler* dl = decodelab_llama_sampler_init("top_k(k=40),top_p(p=0.9),temperature(t=0.7)");
 *   if (!dl) fprintf(stderr, "%s\n", decodelab_last_error());
 *   llama_sampler_chain_add(chain, dl);                      // the chain owns it from here
 *   llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
 *
 * Compile it with llama.cpp's llama.h and link both libllama and libdecodelab. It is built and
 * tested only by the opt-in adapters suite (scripts/test adapters), against the llama.h that
 * llama-cpp-python ships; the interface it fills is llama.cpp's from late 2024 on.
 */
#ifndef DECODELAB_LLAMA_SAMPLER_H
#define DECODELAB_LLAMA_SAMPLER_H

#include <decodelab/decodelab.h>
#include <llama.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A new llama_sampler applying the decodelab chain `spec` (decodelab_chain_create's syntax).
 * NULL when the spec is wrong (decodelab_last_error() says why). */
struct llama_sampler* decodelab_llama_sampler_init(const char* spec);

#ifdef __cplusplus
}
#endif

#endif /* DECODELAB_LLAMA_SAMPLER_H */
