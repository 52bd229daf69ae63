#include "decodelab/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "decodelab/error.hpp"

namespace decodelab {

template <>
SamplerRegistry& SamplerRegistry::instance() {
  static SamplerRegistry registry("sampler");
  return registry;
}

Candidates Candidates::from_logits(std::span<const float> logits) {
  check_logits(logits);
  Candidates c;
  c.data.reserve(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] != -std::numeric_limits<float>::infinity()) c.data.push_back({TokenId(i), logits[i], 0.0f});
  }
  if (c.data.empty()) fail(ErrorCode::numeric, "logits: every token is -inf, nothing can be sampled");
  return c;
}

Candidates Candidates::borrow(std::span<Candidate> storage) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < storage.size(); ++i) {
    const Candidate& x = storage[i];
    if (x.id < 0)
      fail(ErrorCode::invalid_argument, "candidates: entry " + std::to_string(i) + " has a negative token id");
    if (std::isnan(x.logit) || x.logit == std::numeric_limits<float>::infinity())
      fail(ErrorCode::numeric,
           "candidates: entry " + std::to_string(i) + " (token " + std::to_string(x.id) + ") has a NaN or +inf logit");
    if (x.logit != -std::numeric_limits<float>::infinity()) ++kept;
  }
  if (kept == 0)
    fail(ErrorCode::numeric, "candidates: every logit is -inf (or there are none), nothing can be sampled");
  Candidates c;
  c.data = CandidateArray::borrow(storage);
  // Excluded tokens (-inf) go behind the kept ones, as from_logits leaves them out.
  erase_if(c.data, [](const Candidate& x) { return x.logit == -std::numeric_limits<float>::infinity(); });
  return c;
}

namespace {
bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}
}  // namespace

void Candidates::sort() { sort_top(data.size()); }

std::size_t Candidates::sort_top(std::size_t n) {
  n = std::min(n, data.size());
  if (sorted || n <= sorted_prefix) return n;
  const TokenId chosen = selected >= 0 ? data[std::size_t(selected)].id : -1;
  if (n == data.size()) {
    std::sort(data.begin(), data.end(), ranks_before);
    sorted = true;
  } else {
    std::nth_element(data.begin(), data.begin() + std::ptrdiff_t(n), data.end(), ranks_before);
    std::sort(data.begin(), data.begin() + std::ptrdiff_t(n), ranks_before);
  }
  sorted_prefix = n;
  if (chosen >= 0) {
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (data[i].id == chosen) selected = int(i);
    }
  }
  return n;
}

void Candidates::softmax() {
  if (data.empty()) fail(ErrorCode::numeric, "softmax over an empty candidate set");
  float max = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : data) max = std::max(max, c.logit);
  double sum = 0.0;
  for (Candidate& c : data) {
    c.p = std::exp(c.logit - max);
    sum += c.p;
  }
  const double inv = 1.0 / sum;
  for (Candidate& c : data) c.p = float(c.p * inv);
}

std::vector<float> Candidates::dense_probs(int vocab_size) const {
  if (selected >= 0) {
    // A terminal sampler chose: the distribution the token was drawn from is a point mass.
    std::vector<float> p(std::size_t(vocab_size), 0.0f);
    p[std::size_t(selected_token())] = 1.0f;
    return p;
  }
  Candidates copy = *this;
  copy.softmax();
  std::vector<float> p(std::size_t(vocab_size), 0.0f);
  for (const Candidate& c : copy.data) {
    if (c.id < 0 || c.id >= vocab_size) fail(ErrorCode::internal, "candidate token outside the vocabulary");
    p[std::size_t(c.id)] = c.p;
  }
  return p;
}

TokenId Candidates::selected_token() const {
  if (selected < 0 || std::size_t(selected) >= data.size())
    fail(ErrorCode::internal, "no token was selected by the sampler chain");
  return data[std::size_t(selected)].id;
}

SamplerChain& SamplerChain::add(std::unique_ptr<Sampler> sampler) {
  if (!sampler) fail(ErrorCode::invalid_argument, "SamplerChain::add(nullptr)");
  samplers_.push_back(std::move(sampler));
  return *this;
}

std::string SamplerChain::name() const {
  std::string out;
  for (const auto& s : samplers_) out += (out.empty() ? "" : " -> ") + s->name();
  return out.empty() ? "identity" : out;
}

void SamplerChain::apply(Candidates& candidates) {
  for (auto& s : samplers_) s->apply(candidates);
}

void SamplerChain::accept(TokenId token) {
  for (auto& s : samplers_) s->accept(token);
}

void SamplerChain::reset() {
  for (auto& s : samplers_) s->reset();
}

void SamplerChain::bind(const SamplerContext& context) {
  for (auto& s : samplers_) s->bind(context);
}

std::unique_ptr<Sampler> SamplerChain::clone() const {
  auto copy = std::make_unique<SamplerChain>();
  for (const auto& s : samplers_) copy->add(s->clone());
  return copy;
}

std::vector<float> SamplerChain::probs(std::span<const float> logits) {
  Candidates c = Candidates::from_logits(logits);
  apply(c);
  return c.dense_probs(int(logits.size()));
}

std::unique_ptr<SamplerChain> parse_chain(std::string_view spec) {
  auto chain = std::make_unique<SamplerChain>();
  // Split at commas outside parentheses.
  int depth = 0;
  std::size_t start = 0;
  auto flush = [&](std::size_t end) {
    std::string_view item = spec.substr(start, end - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '>' || item.front() == '-')) item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) return;
    auto [name, params] = parse_spec(item);
    chain->add(SamplerRegistry::instance().create(name, params));
  };
  for (std::size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == '(') ++depth;
    if (spec[i] == ')') --depth;
    if (depth < 0) fail(ErrorCode::bad_format, "sampler chain '" + std::string(spec) + "': unbalanced ')'");
    if (spec[i] == ',' && depth == 0) {
      flush(i);
      start = i + 1;
    }
  }
  if (depth != 0) fail(ErrorCode::bad_format, "sampler chain '" + std::string(spec) + "': unbalanced '('");
  flush(spec.size());
  return chain;
}

std::vector<ParamSpec> sampling_param_specs() {
  return {
      ParamSpec::real("temperature", 1.0, 0.0, 1e6, "softmax temperature, applied after truncation; 0 = greedy"),
      ParamSpec::integer("top_k", 0, 0, 1e9, "keep the k most likely tokens; 0 = off"),
      ParamSpec::real("top_p", 1.0, 0.0, 1.0, "nucleus: keep the smallest prefix with mass >= top_p; 1 = off"),
      ParamSpec::real("min_p", 0.0, 0.0, 1.0, "keep tokens with p >= min_p * p_max; 0 = off"),
      ParamSpec::real("typical_p", 1.0, 0.0, 1.0, "locally typical sampling mass; 1 = off"),
      ParamSpec::string(
          "chain", "",
          "explicit sampler chain, e.g. \"top_k(k=40),temperature(t=0.7)\"; replaces the parameters above"),
  };
}

std::vector<ParamSpec> with_sampling_params(std::vector<ParamSpec> specs) {
  for (auto& s : sampling_param_specs()) specs.push_back(std::move(s));
  return specs;
}

std::unique_ptr<SamplerChain> chain_from_params(const Params& params) {
  const std::string& explicit_chain = params.get_string("chain");
  if (!explicit_chain.empty()) return parse_chain(explicit_chain);
  auto chain = std::make_unique<SamplerChain>();
  auto& registry = SamplerRegistry::instance();
  if (params.get_int("top_k") > 0) chain->add(registry.create("top_k", {{"k", params.get_int("top_k")}}));
  if (params.get_real("typical_p") < 1.0) chain->add(registry.create("typical", {{"p", params.get_real("typical_p")}}));
  if (params.get_real("top_p") < 1.0) chain->add(registry.create("top_p", {{"p", params.get_real("top_p")}}));
  if (params.get_real("min_p") > 0.0) chain->add(registry.create("min_p", {{"p", params.get_real("min_p")}}));
  if (params.get_real("temperature") != 1.0)
    chain->add(registry.create("temperature", {{"t", params.get_real("temperature")}}));
  return chain;
}

}  // namespace decodelab
