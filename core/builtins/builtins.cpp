// register_builtins(): one reference to every registering file's anchor (include/decodelab/builtins.hpp).
// tests/builtins/builtins_test.cpp checks that every file with a registration has an anchor and
// that every anchor is listed here.
#include "decodelab/builtins.hpp"

// Declares anchor `id` and adds its address to the list register_builtins() reads.
#define DECODELAB_BUILTIN_REF(id) \
  namespace decodelab::builtins { \
  extern const int id;            \
  }

DECODELAB_BUILTIN_REF(core_model_gguf_model)
DECODELAB_BUILTIN_REF(core_model_factory)
DECODELAB_BUILTIN_REF(decoders_autoregressive_sample)
DECODELAB_BUILTIN_REF(decoders_branching_cntp_decoder)
DECODELAB_BUILTIN_REF(decoders_constrained_awrs_decoder)
DECODELAB_BUILTIN_REF(decoders_constrained_masking_decoder)
DECODELAB_BUILTIN_REF(decoders_smc_smc_decoder)
DECODELAB_BUILTIN_REF(decoders_speculative_block)
DECODELAB_BUILTIN_REF(decoders_speculative_delayed)
DECODELAB_BUILTIN_REF(decoders_speculative_dyspec)
DECODELAB_BUILTIN_REF(decoders_speculative_ngram)
DECODELAB_BUILTIN_REF(decoders_speculative_sd)
DECODELAB_BUILTIN_REF(decoders_speculative_sequoia)
DECODELAB_BUILTIN_REF(decoders_speculative_specinfer)
DECODELAB_BUILTIN_REF(decoders_speculative_spectr)
DECODELAB_BUILTIN_REF(decoders_speculative_traversal)
DECODELAB_BUILTIN_REF(samplers_constraints_json_constraint)
DECODELAB_BUILTIN_REF(samplers_constraints_regex_constraint)
DECODELAB_BUILTIN_REF(samplers_constraints_stop_constraint)
DECODELAB_BUILTIN_REF(samplers_dist)
DECODELAB_BUILTIN_REF(samplers_greedy)
DECODELAB_BUILTIN_REF(samplers_min_p)
DECODELAB_BUILTIN_REF(samplers_temperature)
DECODELAB_BUILTIN_REF(samplers_top_k)
DECODELAB_BUILTIN_REF(samplers_top_p)
DECODELAB_BUILTIN_REF(samplers_top_w)
DECODELAB_BUILTIN_REF(samplers_typical)
#ifdef DECODELAB_BUILTINS_CUDA
DECODELAB_BUILTIN_REF(core_cuda_cuda_loader)
#endif

namespace decodelab {

namespace {
// Reading the anchors through a volatile sink keeps every reference in the object file, however
// the optimizer sees the loop.
volatile int sink = 0;
}  // namespace

void register_builtins() {
  static const int* const anchors[] = {
      &builtins::core_model_gguf_model,
      &builtins::core_model_factory,
      &builtins::decoders_autoregressive_sample,
      &builtins::decoders_branching_cntp_decoder,
      &builtins::decoders_constrained_awrs_decoder,
      &builtins::decoders_constrained_masking_decoder,
      &builtins::decoders_smc_smc_decoder,
      &builtins::decoders_speculative_block,
      &builtins::decoders_speculative_delayed,
      &builtins::decoders_speculative_dyspec,
      &builtins::decoders_speculative_ngram,
      &builtins::decoders_speculative_sd,
      &builtins::decoders_speculative_sequoia,
      &builtins::decoders_speculative_specinfer,
      &builtins::decoders_speculative_spectr,
      &builtins::decoders_speculative_traversal,
      &builtins::samplers_constraints_json_constraint,
      &builtins::samplers_constraints_regex_constraint,
      &builtins::samplers_constraints_stop_constraint,
      &builtins::samplers_dist,
      &builtins::samplers_greedy,
      &builtins::samplers_min_p,
      &builtins::samplers_temperature,
      &builtins::samplers_top_k,
      &builtins::samplers_top_p,
      &builtins::samplers_top_w,
      &builtins::samplers_typical,
#ifdef DECODELAB_BUILTINS_CUDA
      &builtins::core_cuda_cuda_loader,
#endif
  };
  for (const int* anchor : anchors) sink = sink + *anchor;
}

}  // namespace decodelab
