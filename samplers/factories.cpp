// Typed sampler factories: see factories.hpp.
#include "decodelab/sampler_factories.hpp"

namespace decodelab {
namespace {

std::unique_ptr<Sampler> create(const char* name, ParamMap params) {
  return SamplerRegistry::instance().create(name, params);
}

// Seeds are integers in [0, 2^53] in a spec; a larger one is reported by the registry's check.
int64_t as_int(uint64_t v) { return v > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v); }

}  // namespace

std::unique_ptr<Sampler> make_top_k(int64_t k) { return create("top_k", {{"k", k}}); }

std::unique_ptr<Sampler> make_top_p(double p, int64_t min_keep) {
  return create("top_p", {{"p", p}, {"min_keep", min_keep}});
}

std::unique_ptr<Sampler> make_min_p(double p, int64_t min_keep) {
  return create("min_p", {{"p", p}, {"min_keep", min_keep}});
}

std::unique_ptr<Sampler> make_typical(double p, int64_t min_keep) {
  return create("typical", {{"p", p}, {"min_keep", min_keep}});
}

std::unique_ptr<Sampler> make_temperature(double t) { return create("temperature", {{"t", t}}); }

std::unique_ptr<Sampler> make_greedy() { return create("greedy", {}); }

std::unique_ptr<Sampler> make_dist(uint64_t seed, uint64_t stream) {
  return create("dist", {{"seed", as_int(seed)}, {"stream", as_int(stream)}});
}

std::unique_ptr<Sampler> make_top_w(const TopWSettings& s) {
  return create("top_w", {{"lambda", s.lambda},
                          {"beta", s.beta},
                          {"gamma", s.gamma},
                          {"m", s.m},
                          {"p0", s.p0},
                          {"iters", s.iters},
                          {"t_sel", s.t_sel},
                          {"knn", s.knn}});
}

}  // namespace decodelab
