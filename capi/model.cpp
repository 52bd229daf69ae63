// Models behind the C API: a decodelab_model owns one LanguageModel, loaded from a spec or built
// over the caller's callbacks (CallbackModel), and forwards each call to it.
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "capi/callback_model.hpp"
#include "capi/guard.hpp"
#include "capi/model_handle.hpp"
#include "decodelab/model_factory.hpp"

namespace decodelab::capi {
namespace {

decodelab_model* wrap(std::shared_ptr<LanguageModel> model) {
  auto handle = std::make_unique<decodelab_model>();
  handle->model = std::move(model);
  return handle.release();
}

LanguageModel& model_of(const decodelab_model* model) {
  require_ptr(model, "model");
  return *model->model;
}

}  // namespace
}  // namespace decodelab::capi

using namespace decodelab;
using namespace decodelab::capi;

extern "C" {

decodelab_status decodelab_model_load(const char* spec, const decodelab_model* target, decodelab_model** out) {
  return guarded(__func__, [&] {
    require_ptr(spec, "spec");
    require_ptr(out, "out");
    *out = wrap(load_model(spec, target ? target->model.get() : nullptr));
  });
}

decodelab_status decodelab_model_from_callbacks(const decodelab_model_callbacks* callbacks, decodelab_model** out) {
  return guarded(__func__, [&] {
    require_ptr(callbacks, "callbacks");
    if (callbacks->struct_size < sizeof(decodelab_model_callbacks)) {
      if (callbacks->destroy) callbacks->destroy(callbacks->user);
      fail(ErrorCode::invalid_argument,
           "callbacks->struct_size is " + std::to_string(callbacks->struct_size) +
               ", expected sizeof(decodelab_model_callbacks) = " + std::to_string(sizeof(decodelab_model_callbacks)));
    }
    if (!out) {
      if (callbacks->destroy) callbacks->destroy(callbacks->user);
      require_ptr(out, "out");
    }
    *out = wrap(std::make_shared<CallbackModel>(*callbacks));
  });
}

void decodelab_model_free(decodelab_model* model) {
  // A destructor that throws would end the process: a failing destroy is the caller's, and
  // CallbackModel's destructor calls no callback that can report failure.
  delete model;
}

decodelab_status decodelab_model_get_info(const decodelab_model* model, decodelab_model_info* out) {
  return guarded(__func__, [&] {
    const ModelInfo& info = model_of(model).info();
    require_ptr(out, "out");
    out->name = info.name.c_str();
    out->vocab_size = info.vocab_size;
    out->context_length = info.context_length;
    out->bos = info.bos;
    out->eos = info.eos;
    out->add_bos = info.add_bos ? 1 : 0;
  });
}

decodelab_status decodelab_model_tokenize(const decodelab_model* model, const char* text, int32_t add_special,
                                          int32_t* tokens, size_t capacity, size_t* n_tokens) {
  return guarded(__func__, [&] {
    const LanguageModel& m = model_of(model);
    require_ptr(text, "text");
    require_ptr(n_tokens, "n_tokens");
    if (!m.has_tokenizer()) fail(ErrorCode::unsupported, "model '" + m.info().name + "' has no tokenizer");
    const std::vector<TokenId> ids = m.tokenize(text, add_special != 0);
    if (capacity > 0 || tokens) {
      require_ptr(tokens, "tokens");
      if (capacity < ids.size())
        fail(ErrorCode::invalid_argument, "capacity " + std::to_string(capacity) + " is less than the " +
                                              std::to_string(ids.size()) + " tokens of the text");
      std::copy(ids.begin(), ids.end(), tokens);
    }
    *n_tokens = ids.size();
  });
}

decodelab_status decodelab_model_new_sequence(decodelab_model* model, int32_t* seq) {
  return guarded(__func__, [&] {
    LanguageModel& m = model_of(model);
    require_ptr(seq, "seq");
    *seq = m.new_sequence();
  });
}

decodelab_status decodelab_model_fork(decodelab_model* model, int32_t seq, int32_t* child) {
  return guarded(__func__, [&] {
    LanguageModel& m = model_of(model);
    require_ptr(child, "child");
    *child = m.fork(seq);
  });
}

decodelab_status decodelab_model_free_sequence(decodelab_model* model, int32_t seq) {
  return guarded(__func__, [&] { model_of(model).free_sequence(seq); });
}

decodelab_status decodelab_model_length(const decodelab_model* model, int32_t seq, size_t* length) {
  return guarded(__func__, [&] {
    const LanguageModel& m = model_of(model);
    require_ptr(length, "length");
    *length = m.length(seq);
  });
}

decodelab_status decodelab_model_evaluate(decodelab_model* model, int32_t seq, const int32_t* tokens,
                                          const int32_t* parents, size_t n_nodes, float* logits) {
  return guarded(__func__, [&] {
    LanguageModel& m = model_of(model);
    require_ptr(tokens, "tokens");
    require_ptr(parents, "parents");
    require_ptr(logits, "logits");
    if (n_nodes == 0) fail(ErrorCode::invalid_argument, "n_nodes is 0; a tree has at least one node");
    if (n_nodes > std::size_t(INT32_MAX)) fail(ErrorCode::invalid_argument, "n_nodes exceeds INT32_MAX");
    TreeEval tree;
    tree.seq = seq;
    tree.nodes.resize(n_nodes);
    for (std::size_t i = 0; i < n_nodes; ++i) tree.nodes[i] = {tokens[i], parents[i]};
    std::vector<Matrix> out;
    m.evaluate(std::span<const TreeEval>(&tree, 1), out);
    std::memcpy(logits, out[0].data.data(), out[0].data.size() * sizeof(float));
  });
}

decodelab_status decodelab_model_commit(decodelab_model* model, int32_t seq, const int32_t* path, size_t n_path) {
  return guarded(__func__, [&] {
    LanguageModel& m = model_of(model);
    require_ptr(path, "path");
    if (n_path == 0) fail(ErrorCode::invalid_argument, "n_path is 0; a commit keeps at least one node");
    m.commit(seq, std::span<const int32_t>(path, n_path));
  });
}

decodelab_status decodelab_model_rollback(decodelab_model* model, int32_t seq, size_t new_length) {
  return guarded(__func__, [&] { model_of(model).rollback(seq, new_length); });
}

}  // extern "C"
