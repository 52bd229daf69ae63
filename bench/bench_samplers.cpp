// Cost of the logits-level samplers on a real vocabulary size (Qwen2.5: 151,936 tokens): what one
// decode step spends after the forward pass. Run: build/bin/bench_samplers
#include <benchmark/benchmark.h>

#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"
#include "decodelab/top_w.hpp"

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
BENCHMARK_CAPTURE(run_chain, llama_default,
                  "top_k(k=40),typical(p=1),top_p(p=0.95),min_p(p=0.05),temperature(t=0.8),dist(seed=1)");

// Top-W needs a geometry: a random N(0, 1) [vocab x 896] embedding table (Qwen2.5-0.5B's width),
// built once (the build itself is timed by BM_TopWGeometryBuild).
constexpr int kEmbeddingDim = 896;

Matrix make_embeddings() {
  Matrix e;
  e.resize(kVocab, kEmbeddingDim);
  PhiloxStream rng(2, 0);
  for (float& x : e.data) x = float(rng.normal());
  return e;
}

const std::shared_ptr<const TokenGeometry>& bench_geometry() {
  static const std::shared_ptr<const TokenGeometry> g = TokenGeometry::build(make_embeddings());
  return g;
}

void BM_TopWGeometryBuild(benchmark::State& state) {
  const Matrix e = make_embeddings();
  for (auto _ : state) benchmark::DoNotOptimize(TokenGeometry::build(e).get());
}
BENCHMARK(BM_TopWGeometryBuild)->Unit(benchmark::kMillisecond)->Iterations(2);

// One Top-W step with the defaults (M = 1200, 9 alternations at most). `logit_scale` sets how
// peaked p is: 3 N(0,1) logits spread the pool's mass (a large warm start: the worst case for the
// O(M |S| dim) similarities), 8 N(0,1) concentrate it on a few dozen tokens.
void BM_TopW(benchmark::State& state, double logit_scale, double gamma) {
  std::vector<float> logits(kVocab);
  PhiloxStream rng(1, 0);
  for (float& x : logits) x = float(logit_scale * rng.normal());
  TopWSettings s;
  s.gamma = gamma;
  TopW top_w(s);
  top_w.set_geometry(bench_geometry());
  for (auto _ : state) {
    Candidates c = Candidates::from_logits(logits);
    top_w.apply(c);
    benchmark::DoNotOptimize(c.data.data());
  }
  state.counters["warm"] = top_w.trace().warm;
  state.counters["kept"] = top_w.trace().kept;
  state.counters["alternations"] = top_w.trace().alternations;
}
BENCHMARK_CAPTURE(BM_TopW, flat_3, 3.0, 0.6)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TopW, peaked_8, 8.0, 0.6)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TopW, flat_3_geometry_off, 3.0, 0.0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TopW, peaked_8_geometry_off, 8.0, 0.0)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace decodelab

BENCHMARK_MAIN();
