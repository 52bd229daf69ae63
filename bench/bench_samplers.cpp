// Cost of the logits-level samplers on a real vocabulary size (Qwen2.5: 151,936 tokens): what one
// decode step spends after the forward pass. Run: build/bin/bench_samplers
#include <benchmark/benchmark.h>

#include "core/philox.hpp"
#include "samplers/sampler.hpp"

namespace decodelab {
namespace {

constexpr int kVocab = 151936;

std::vector<float> make_logits() {
  std::vector<float> logits(kVocab);
  PhiloxStream rng(1, 0);
  for (float& x : logits) x = float(3.0 * rng.normal());
  return logits;
}

void run_chain(benchmark::State& state, const char* spec) {
  const std::vector<float> logits = make_logits();
  auto chain = parse_chain(spec);
  for (auto _ : state) {
    Candidates c = Candidates::from_logits(logits);
    chain->apply(c);
    benchmark::DoNotOptimize(c.data.data());
  }
  state.SetItemsProcessed(state.iterations() * kVocab);
}

void BM_Softmax(benchmark::State& state) {
  const std::vector<float> logits = make_logits();
  std::vector<float> p(kVocab);
  for (auto _ : state) {
    softmax(logits, p);
    benchmark::DoNotOptimize(p.data());
  }
  state.SetItemsProcessed(state.iterations() * kVocab);
}
BENCHMARK(BM_Softmax);

BENCHMARK_CAPTURE(run_chain, greedy, "greedy");
BENCHMARK_CAPTURE(run_chain, top_k_40, "top_k(k=40)");
BENCHMARK_CAPTURE(run_chain, top_p_0_9, "top_p(p=0.9)");
BENCHMARK_CAPTURE(run_chain, min_p_0_05, "min_p(p=0.05)");
BENCHMARK_CAPTURE(run_chain, typical_0_9, "typical(p=0.9)");
BENCHMARK_CAPTURE(run_chain, llama_default, "top_k(k=40),typical(p=1),top_p(p=0.95),min_p(p=0.05),temperature(t=0.8),dist(seed=1)");

}  // namespace
}  // namespace decodelab

BENCHMARK_MAIN();
