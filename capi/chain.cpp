// Sampler chains behind the C API: a decodelab_chain owns one SamplerChain and forwards each call,
// doing exactly what the C++ caller would (Candidates::from_logits, apply, dense_probs), so the
// results are the same bit for bit.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>

#include "capi/guard.hpp"
#include "capi/model_handle.hpp"
#include "decodelab/language_model.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"

static_assert(sizeof(decodelab_token_data) == sizeof(decodelab::Candidate) &&
              offsetof(decodelab_token_data, id) == offsetof(decodelab::Candidate, id) &&
              offsetof(decodelab_token_data, logit) == offsetof(decodelab::Candidate, logit) &&
              offsetof(decodelab_token_data, p) == offsetof(decodelab::Candidate, p));

struct decodelab_chain {
  std::unique_ptr<decodelab::SamplerChain> chain;
};

namespace decodelab::capi {
namespace {

decodelab_chain* wrap(std::unique_ptr<SamplerChain> chain) {
  auto handle = std::make_unique<decodelab_chain>();
  handle->chain = std::move(chain);
  return handle.release();
}

// The chain applied to logits: checks the arguments, then what SamplerChain::probs does.
Candidates run_chain(decodelab_chain* chain, const float* logits, std::size_t n_vocab) {
  require_ptr(chain, "chain");
  require_ptr(logits, "logits");
  require_vocab(n_vocab, "n_vocab");
  Candidates c = Candidates::from_logits(std::span(logits, n_vocab));
  chain->chain->apply(c);
  return c;
}

}  // namespace
}  // namespace decodelab::capi

using namespace decodelab;

extern "C" {

decodelab_status decodelab_chain_create(const char* spec, decodelab_chain** out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(spec, "spec");
    capi::require_ptr(out, "out");
    *out = capi::wrap(parse_chain(spec));
  });
}

decodelab_status decodelab_chain_from_params(const char* params, decodelab_chain** out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(params, "params");
    capi::require_ptr(out, "out");
    const std::vector<ParamSpec> specs = sampling_param_specs();
    const Params resolved = resolve_params("sampling parameters", specs, parse_assignments(params, "params"));
    *out = capi::wrap(chain_from_params(resolved));
  });
}

decodelab_status decodelab_chain_clone(const decodelab_chain* chain, decodelab_chain** out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    capi::require_ptr(out, "out");
    std::unique_ptr<Sampler> copy = chain->chain->clone();
    auto* as_chain = dynamic_cast<SamplerChain*>(copy.get());
    if (!as_chain) fail(ErrorCode::internal, "SamplerChain::clone did not return a SamplerChain");
    copy.release();
    *out = capi::wrap(std::unique_ptr<SamplerChain>(as_chain));
  });
}

void decodelab_chain_free(decodelab_chain* chain) { delete chain; }

decodelab_status decodelab_chain_length(const decodelab_chain* chain, size_t* out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    capi::require_ptr(out, "out");
    *out = chain->chain->size();
  });
}

decodelab_status decodelab_chain_describe(const decodelab_chain* chain, char* buf, size_t capacity, size_t* length) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    capi::require_ptr(length, "length");
    if (buf == nullptr && capacity != 0)
      fail(ErrorCode::invalid_argument, "buf is NULL but capacity is " + std::to_string(capacity));
    const std::string name = chain->chain->name();
    if (buf != nullptr) {
      if (capacity < name.size() + 1)
        fail(ErrorCode::invalid_argument, "buf of " + std::to_string(capacity) + " bytes cannot hold the " +
                                              std::to_string(name.size()) + "-character description and its NUL");
      std::memcpy(buf, name.c_str(), name.size() + 1);
    }
    *length = name.size();
  });
}

decodelab_status decodelab_chain_apply(decodelab_chain* chain, float* logits, size_t n_vocab, int32_t* selected) {
  return capi::guarded(__func__, [&] {
    const Candidates c = capi::run_chain(chain, logits, n_vocab);
    const int32_t chosen = c.selected >= 0 ? c.selected_token() : -1;
    // Everything that can fail is done: only now write the caller's array.
    std::fill(logits, logits + n_vocab, -std::numeric_limits<float>::infinity());
    for (const Candidate& k : c.data) logits[k.id] = k.logit;
    if (selected) *selected = chosen;
  });
}

decodelab_status decodelab_chain_apply_candidates(decodelab_chain* chain, decodelab_candidates* candidates) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    capi::require_ptr(candidates, "candidates");
    if (candidates->data == nullptr && candidates->size != 0)
      fail(ErrorCode::invalid_argument, "candidates->data is NULL but size is " + std::to_string(candidates->size));
    // decodelab_token_data is Candidate's layout (static_asserts above): the chain works on the
    // caller's entries directly.
    Candidates c = Candidates::borrow(std::span(reinterpret_cast<Candidate*>(candidates->data), candidates->size));
    chain->chain->apply(c);
    candidates->size = c.data.size();
    candidates->selected = c.selected;
    candidates->sorted = c.sorted;
  });
}

decodelab_status decodelab_chain_bind_embeddings(decodelab_chain* chain, const float* embeddings, size_t n_vocab,
                                                 size_t dim) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    capi::require_ptr(embeddings, "embeddings");
    capi::require_vocab(n_vocab, "n_vocab");
    if (dim == 0 || dim > std::size_t(std::numeric_limits<int>::max()) / n_vocab)
      fail(ErrorCode::invalid_argument, "dim must be in [1, INT32_MAX / n_vocab], got " + std::to_string(dim));
    Matrix e;
    e.resize(int(n_vocab), int(dim));
    std::copy(embeddings, embeddings + n_vocab * dim, e.data.begin());
    SamplerContext context;
    context.token_embeddings = &e;
    chain->chain->bind(context);
  });
}

decodelab_status decodelab_chain_bind_model(decodelab_chain* chain, const decodelab_model* model) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    capi::require_ptr(model, "model");
    SamplerContext context;
    context.model = model->model.get();
    chain->chain->bind(context);
  });
}

decodelab_status decodelab_chain_probs(decodelab_chain* chain, const float* logits, size_t n_vocab, float* probs) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(probs, "probs");
    const Candidates c = capi::run_chain(chain, logits, n_vocab);
    const std::vector<float> p = c.dense_probs(int(n_vocab));
    std::copy(p.begin(), p.end(), probs);
  });
}

decodelab_status decodelab_chain_sample(decodelab_chain* chain, const float* logits, size_t n_vocab, uint64_t seed,
                                        uint64_t stream, uint64_t step, int32_t* token) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(token, "token");
    const Candidates c = capi::run_chain(chain, logits, n_vocab);
    // As the `sample` decoder does: inverse CDF over the dense distribution.
    const std::vector<float> p = c.dense_probs(int(n_vocab));
    const double u = PhiloxStream::at_step(seed, stream, step).uniform_double();
    *token = sample_from_weights(p, u);
  });
}

decodelab_status decodelab_chain_accept(decodelab_chain* chain, int32_t token) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    if (token < 0) fail(ErrorCode::invalid_argument, "token = " + std::to_string(token) + " is negative");
    chain->chain->accept(token);
  });
}

decodelab_status decodelab_chain_reset(decodelab_chain* chain) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(chain, "chain");
    chain->chain->reset();
  });
}

}  // extern "C"
