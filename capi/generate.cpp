// decodelab_generate: any registered decoder over decodelab_models, as `decodelab generate` runs
// it (make_decoder with the spec's parameters, a TokenStream holding the prompt, DecodeOptions).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "capi/guard.hpp"
#include "capi/model_handle.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/params.hpp"

using namespace decodelab;
using namespace decodelab::capi;

extern "C" {

void decodelab_generate_options_init(decodelab_generate_options* options) {
  if (!options) return;
  *options = decodelab_generate_options{};
  options->struct_size = sizeof(decodelab_generate_options);
  options->seed = 0;
  options->max_new_tokens = 64;
  options->stop_at_eos = 1;
}

decodelab_status decodelab_generate(const char* decoder_spec, decodelab_model* target, decodelab_model* draft,
                                    const int32_t* prompt, size_t n_prompt, const decodelab_generate_options* options,
                                    int32_t* tokens, size_t capacity, decodelab_generate_stats* stats) {
  return guarded(__func__, [&] {
    require_ptr(decoder_spec, "decoder_spec");
    require_ptr(target, "target");
    require_ptr(prompt, "prompt");
    require_ptr(tokens, "tokens");
    if (n_prompt == 0) fail(ErrorCode::invalid_argument, "n_prompt is 0; decoders need at least one prompt token");
    decodelab_generate_options defaults;
    decodelab_generate_options_init(&defaults);
    if (!options) options = &defaults;
    // 0.2's options ended before role_names; a caller built against it passes that size.
    constexpr std::size_t kSize02 = offsetof(decodelab_generate_options, role_names);
    if (options->struct_size < kSize02)
      fail(ErrorCode::invalid_argument, "options->struct_size is " + std::to_string(options->struct_size) +
                                            "; set it with decodelab_generate_options_init");
    const bool has_roles = options->struct_size >= sizeof(decodelab_generate_options);
    if (options->max_new_tokens < 1)
      fail(ErrorCode::invalid_argument,
           "options->max_new_tokens is " + std::to_string(options->max_new_tokens) + ", must be >= 1");
    if (capacity < std::size_t(options->max_new_tokens))
      fail(ErrorCode::invalid_argument, "capacity " + std::to_string(capacity) + " is less than max_new_tokens " +
                                            std::to_string(options->max_new_tokens));
    if (options->n_stop_tokens > 0) require_ptr(options->stop_tokens, "options->stop_tokens");

    ModelSet models;
    models.set("target", target->model.get());
    if (draft) models.set("draft", draft->model.get());
    if (has_roles && options->n_roles > 0) {
      require_ptr(options->role_names, "options->role_names");
      require_ptr(options->role_models, "options->role_models");
      for (std::size_t i = 0; i < options->n_roles; ++i) {
        const std::string at = "options->role_names[" + std::to_string(i) + "]";
        require_ptr(options->role_names[i], at.c_str());
        const std::string role = options->role_names[i];
        if (role.empty() || role == "target" || role == "draft" || models.find(role))
          fail(ErrorCode::invalid_argument, at + " is '" + role +
                                                "': roles must be non-empty and distinct, and target and draft are "
                                                "given as decodelab_generate's own arguments");
        const std::string model_at = "options->role_models[" + std::to_string(i) + "]";
        require_ptr(options->role_models[i], model_at.c_str());
        models.set(role, options->role_models[i]->model.get());
      }
    }
    const auto [name, params] = parse_spec(decoder_spec);
    auto decoder = make_decoder(name, params, &models);

    DecodeOptions run;
    run.seed = options->seed;
    run.max_new_tokens = options->max_new_tokens;
    run.stop_at_eos = options->stop_at_eos != 0;
    run.stop_tokens.assign(options->stop_tokens, options->stop_tokens + options->n_stop_tokens);
    check_decode_options(run);
    TokenStream stream(std::span<const TokenId>(prompt, n_prompt));
    const Stats result = decoder->generate(models, run, stream);

    const std::vector<TokenId> generated = stream.generated_tokens();
    if (generated.size() > capacity)
      fail(ErrorCode::internal, "decoder '" + name + "' generated " + std::to_string(generated.size()) +
                                    " tokens, more than max_new_tokens");
    std::copy(generated.begin(), generated.end(), tokens);
    if (stats) {
      *stats = decodelab_generate_stats{};
      stats->n_tokens = generated.size();
      stats->steps = result.steps;
      stats->target_calls = result.target_calls;
      stats->draft_calls = result.draft_calls;
      stats->tokens_proposed = result.tokens_proposed;
      stats->tokens_accepted = result.tokens_accepted;
      const std::size_t n = std::min(result.stop_reason.size(), sizeof stats->stop_reason - 1);
      std::memcpy(stats->stop_reason, result.stop_reason.data(), n);
    }
  });
}

}  // extern "C"
