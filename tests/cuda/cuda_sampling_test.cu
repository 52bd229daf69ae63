// Device sampling and log-softmax against the CPU sampler chain on the same logits: exact token
// agreement for every parameter combination and step (the same Philox key, the same kept sets).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/cuda/device.hpp"
#include "core/cuda/kernels.hpp"
#include "core/cuda/sampling.hpp"
#include "decodelab/distribution.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"
#include "tests/cuda/cuda_test_support.hpp"

namespace decodelab {
namespace {

// Logits like a model's: a few large ones over a broad tail, plus exact ties (equal logits must be
// ordered by id on both sides).
std::vector<float> model_like_logits(int vocab, uint64_t seed) {
  PhiloxStream r(seed, 5);
  std::vector<float> l(static_cast<std::size_t>(vocab));
  for (float& x : l) x = float(r.normal() * 2.0);
  for (int i = 0; i < 20; ++i) l[r.next_u32() % uint32_t(vocab)] = float(8.0 + 4.0 * r.uniform_double());
  for (int i = 0; i < 8; ++i) l[std::size_t(i * 3)] = 9.5f;  // a block of ties near the top
  return l;
}

TokenId cpu_sample(const std::vector<float>& logits, const cuda::SamplingParams& p, uint64_t step) {
  std::string spec;
  if (p.temperature != 1.0) spec += "temperature(t=" + std::to_string(p.temperature) + "),";
  if (p.top_k > 0) spec += "top_k(k=" + std::to_string(p.top_k) + "),";
  if (p.top_p < 1.0) spec += "top_p(p=" + std::to_string(p.top_p) + "),";
  if (p.min_p > 0.0) spec += "min_p(p=" + std::to_string(p.min_p) + "),";
  spec += p.temperature == 0.0 ? "greedy"
                               : "dist(seed=" + std::to_string(p.seed) + ",stream=" + std::to_string(p.stream) + ")";
  auto chain = parse_chain(spec);
  for (uint64_t i = 0; i < step; ++i) chain->accept(0);  // dist draws from step `step`
  Candidates c = Candidates::from_logits(logits);
  chain->apply(c);
  return c.selected_token();
}

class DeviceSampling : public ::testing::TestWithParam<int> {};

TEST_P(DeviceSampling, MatchesTheCpuChain) {
  DECODELAB_REQUIRE_GPU();
  const int vocab = GetParam();
  const std::vector<cuda::SamplingParams> cases = {
      {1.0, 0, 1.0, 0.0, 1, 0}, {0.7, 0, 1.0, 0.0, 2, 0},    {1.0, 40, 1.0, 0.0, 3, 1},
      {0.8, 0, 0.9, 0.0, 4, 0}, {1.3, 50, 0.95, 0.05, 5, 7}, {1.0, 0, 1.0, 0.1, 6, 0},
      {0.0, 0, 1.0, 0.0, 7, 0}, {1.0, 1, 1.0, 0.0, 8, 0},    {2.0, 0, 0.5, 0.0, 9, 3},
  };
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cuda::DeviceSampler sampler(vocab);
  const int rows = 4;
  cuda::DeviceBuffer d_logits(std::size_t(rows) * vocab * 4, "test logits");
  int compared = 0;
  for (uint64_t seed = 0; seed < 3; ++seed) {
    std::vector<std::vector<float>> logits;
    std::vector<float> flat;
    for (int r = 0; r < rows; ++r) {
      logits.push_back(model_like_logits(vocab, seed * 10 + uint64_t(r)));
      flat.insert(flat.end(), logits.back().begin(), logits.back().end());
    }
    ASSERT_EQ(cudaMemcpy(d_logits.get(), flat.data(), flat.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    for (const cuda::SamplingParams& p : cases) {
      const std::vector<uint64_t> steps = {0, 1, 17 + seed, 1000};
      const std::vector<TokenId> got = sampler.sample(d_logits.as<float>(), rows, p, steps, stream);
      for (int r = 0; r < rows; ++r) {
        EXPECT_EQ(got[std::size_t(r)], cpu_sample(logits[std::size_t(r)], p, steps[std::size_t(r)]))
            << "vocab " << vocab << " t " << p.temperature << " k " << p.top_k << " p " << p.top_p << " min_p "
            << p.min_p << " row " << r;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 3 * 9 * rows);
  cudaStreamDestroy(stream);
}

TEST_P(DeviceSampling, LogSoftmaxMatchesTheCpu) {
  DECODELAB_REQUIRE_GPU();
  const int vocab = GetParam();
  const std::vector<float> l = model_like_logits(vocab, 42);
  cuda::DeviceBuffer in(l.size() * 4, "test logits"), out(l.size() * 4, "test log-probs");
  ASSERT_EQ(cudaMemcpy(in.get(), l.data(), l.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  cuda::log_softmax(in.as<float>(), out.as<float>(), 1, vocab, nullptr);
  std::vector<float> got(l.size());
  ASSERT_EQ(cudaMemcpy(got.data(), out.get(), got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  const std::vector<float> want = log_softmax(l);
  double err = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(double(got[i]) - want[i]));
  EXPECT_LE(err, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Vocab, DeviceSampling, ::testing::Values(257, 32000, 151936));

}  // namespace
}  // namespace decodelab
