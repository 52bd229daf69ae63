#pragma once
// Typed factories for the registered samplers, for C++ code that builds chains without spec
// strings:
//
//   SamplerChain chain;
//   chain.add(make_top_k(40)).add(make_top_p(0.95)).add(make_temperature(0.7)).add(make_dist(seed));
//
// Each builds the sampler through its registry entry, so the parameters are checked against the
// same ParamSpecs a spec string is (Error(invalid_argument) naming the sampler and the parameter
// when one is out of range) and the sampler is the one "top_k(k=40)" names, bit for bit.
#include <cstdint>
#include <memory>

#include "decodelab/sampler.hpp"
#include "decodelab/top_w.hpp"

namespace decodelab {

std::unique_ptr<Sampler> make_top_k(int64_t k);
std::unique_ptr<Sampler> make_top_p(double p, int64_t min_keep = 1);
std::unique_ptr<Sampler> make_min_p(double p, int64_t min_keep = 1);
std::unique_ptr<Sampler> make_typical(double p, int64_t min_keep = 1);
std::unique_ptr<Sampler> make_temperature(double t);
std::unique_ptr<Sampler> make_greedy();
std::unique_ptr<Sampler> make_dist(uint64_t seed, uint64_t stream = 0);
std::unique_ptr<Sampler> make_top_w(const TopWSettings& settings = {});

}  // namespace decodelab
