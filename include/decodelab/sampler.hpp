#pragma once
// Logits-level samplers, in the shape of llama.cpp's llama_sampler: a tiny interface
// (apply / accept / reset / clone) that every sampler implements and that composes into chains.
// It depends on nothing else in decodelab but distribution.hpp, philox.hpp and params, so other
// engines can embed it.
//
//   Candidates c = Candidates::from_logits(logits);   // all tokens, NaN rejected, -inf dropped
//                                                     // (or Candidates::borrow(array): in place)
//   chain.apply(c);                                   // truncate, rescale, maybe select
//   std::vector<float> p = c.dense_probs(vocab);      // the processed distribution
//
// Truncation samplers keep a subset of the candidates and never change the relative logits of
// what they keep; temperature rescales; terminal samplers (greedy, dist) set `selected`.
// Ties are broken deterministically: equal logits are ordered by token id, lowest first.
//
// Samplers that need more than logits (Top-W needs the model's token-embedding geometry) get it
// through bind(SamplerContext): decoders bind their chain to the target before the first apply().
// Samplers that need nothing ignore it.

#include <memory>
#include <string>
#include <vector>

#include "decodelab/candidates.hpp"
#include "decodelab/distribution.hpp"
#include "decodelab/registry.hpp"

namespace decodelab {

class LanguageModel;  // include/decodelab/language_model.hpp; only a pointer here, so no dependency on it

struct Matrix;  // include/decodelab/language_model.hpp

// What a sampler may know besides the logits: the model whose logits it processes, or, for an
// engine whose model decodelab does not see, that model's token embeddings directly.
struct SamplerContext {
  const LanguageModel* model = nullptr;  // null: no model (plain logits)
  // [vocab x dim], row = token id; used when `model` is null. Samplers that keep something of it
  // (Top-W's geometry) copy it during bind(), so it need only live through the bind() call.
  const Matrix* token_embeddings = nullptr;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string name() const = 0;
  virtual void apply(Candidates& candidates) = 0;
  // The token actually emitted (stateful samplers update themselves).
  virtual void accept(TokenId /*token*/) {}
  virtual void reset() {}
  virtual std::unique_ptr<Sampler> clone() const = 0;
  // Called before the first apply() with the model the logits come from (and again when it
  // changes). A clone keeps what its original was bound to.
  virtual void bind(const SamplerContext& /*context*/) {}
};

class SamplerChain final : public Sampler {
 public:
  SamplerChain() = default;
  SamplerChain& add(std::unique_ptr<Sampler> sampler);
  std::size_t size() const { return samplers_.size(); }
  const Sampler& at(std::size_t i) const { return *samplers_.at(i); }

  std::string name() const override;  // "top_k(k=40) -> temperature(t=0.8)"
  void apply(Candidates& candidates) override;
  void accept(TokenId token) override;
  void reset() override;
  std::unique_ptr<Sampler> clone() const override;
  void bind(const SamplerContext& context) override;  // binds every sampler of the chain

  // Applies the chain to raw logits and returns the processed distribution over the vocabulary.
  std::vector<float> probs(std::span<const float> logits);

 private:
  std::vector<std::unique_ptr<Sampler>> samplers_;
};

using SamplerRegistry = Registry<Sampler>;
template <>
SamplerRegistry& SamplerRegistry::instance();

struct RegisterSampler {
  explicit RegisterSampler(RegistryEntry<Sampler> entry) { SamplerRegistry::instance().add(std::move(entry)); }
};

// "top_k(k=40), top_p(p=0.9), temperature(t=0.7)" -> a chain; "" -> an empty chain (identity).
std::unique_ptr<SamplerChain> parse_chain(std::string_view spec);

// The sampling parameters every sampling decoder accepts: temperature, top_k, top_p, min_p,
// typical_p and `chain` (an explicit chain spec that replaces the others when not empty).
std::vector<ParamSpec> sampling_param_specs();
// Builds the chain those parameters describe. Default order, as in llama.cpp: top_k, typical_p,
// top_p, min_p on the untempered logits, then temperature (0 = greedy).
std::unique_ptr<SamplerChain> chain_from_params(const Params& params);
// Appends sampling_param_specs() to a decoder's own specs.
std::vector<ParamSpec> with_sampling_params(std::vector<ParamSpec> specs);

}  // namespace decodelab
