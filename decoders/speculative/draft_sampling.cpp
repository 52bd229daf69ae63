// The draft's own sampler chain; see draft_sampling.hpp.
#include "decoders/speculative/draft_sampling.hpp"

#include <string>

#include "decodelab/error.hpp"

namespace decodelab::speculative {

std::vector<ParamSpec> draft_sampling_params() {
  return {
      ParamSpec::real("draft_temperature", -1.0, -1.0, 1e6,
                      "temperature of the draft law (-1: the target's; 0: greedy drafts); verification stays exact"),
      ParamSpec::integer("draft_top_k", -1, -1, 1e9, "top-k of the draft law (-1: the target's top_k; 0: off)"),
      ParamSpec::string("draft_chain", "",
                        "explicit draft sampler chain, e.g. \"top_k(k=8),temperature(t=1)\"; replaces the target's "
                        "chain and draft_temperature/draft_top_k for the draft"),
  };
}

std::unique_ptr<SamplerChain> draft_chain_from_params(const Params& params, bool deterministic) {
  const double temperature = params.get_real("draft_temperature");
  const int64_t top_k = params.get_int("draft_top_k");
  const std::string& explicit_chain = params.get_string("draft_chain");
  if (temperature < 0.0 && temperature != -1.0)
    fail(ErrorCode::invalid_argument,
         "draft_temperature must be -1 (the target's) or >= 0, got " + std::to_string(temperature));
  const bool overridden = temperature != -1.0 || top_k != -1;
  if (!explicit_chain.empty()) {
    if (overridden)
      fail(ErrorCode::invalid_argument,
           "draft_chain replaces draft_temperature and draft_top_k: give either the chain or those parameters");
    return parse_chain(explicit_chain);
  }
  const double target_temperature = params.get_real("temperature");
  const bool greedy_ranking = deterministic && params.get_string("chain").empty() &&
                              (temperature == -1.0 ? target_temperature : temperature) == 0.0;
  if (!overridden && !greedy_ranking) return nullptr;
  if (!params.get_string("chain").empty())
    fail(ErrorCode::invalid_argument,
         "draft_temperature and draft_top_k adjust the chain built from temperature/top_k/...; with an explicit "
         "`chain` give `draft_chain` instead");
  ParamMap values = params.values();
  if (temperature != -1.0) values["temperature"] = temperature;
  if (greedy_ranking) values["temperature"] = 1.0;
  if (top_k != -1) values["top_k"] = top_k;
  return chain_from_params(Params(std::move(values)));
}

}  // namespace decodelab::speculative
