// Per-call cost of the C API (libdecodelab.so) against calling the C++ API directly, pair by pair
// on the same inputs: a call that does almost nothing (the boundary itself: PLT call, argument
// checks, the exception guard), chains on a small (32) and a real (151,936, Qwen2.5) vocabulary,
// sampling, and speculative verification. The C side also pays for what its contract adds: the
// in-place write-back of apply, copying probs into the caller's array, and checking p and q are
// finite and >= 0 before verification. Results: docs/c-api.md. Run: build/bin/bench_capi
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "decodelab/decodelab.h"
#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"
#include "decodelab/verify.hpp"

namespace decodelab {
namespace {

constexpr int kLargeVocab = 151936;
constexpr const char* kLlamaDefault =
    "top_k(k=40),typical(p=1),top_p(p=0.95),min_p(p=0.05),temperature(t=0.8),dist(seed=1)";

// 3 x standard normal logits; or, with DECODELAB_BENCH_LOGITS naming a file of float32 values, the
// first n of those (bench/python/bench_chain_overhead.py passes its own, so both sides see the same).
std::vector<float> make_logits(int n) {
  std::vector<float> logits(std::size_t(n), 0.0f);
  if (const char* path = std::getenv("DECODELAB_BENCH_LOGITS"); path && *path) {
    std::FILE* f = std::fopen(path, "rb");
    if (!f || std::fread(logits.data(), sizeof(float), logits.size(), f) != logits.size()) {
      std::fprintf(stderr, "bench_capi: cannot read %d float32 logits from %s\n", n, path);
      std::exit(2);
    }
    std::fclose(f);
    return logits;
  }
  PhiloxStream rng(1, 0);
  for (float& x : logits) x = float(3.0 * rng.normal());
  return logits;
}

decodelab_chain* c_chain(const char* spec) {
  decodelab_chain* chain = nullptr;
  if (decodelab_chain_create(spec, &chain) != DECODELAB_OK) std::abort();
  return chain;
}

void check(decodelab_status status) {
  if (status != DECODELAB_OK) std::abort();
}

// --- the boundary alone: accept() on an empty chain --------------------------------------------

void BM_Accept_Cpp(benchmark::State& state) {
  auto chain = parse_chain("");
  for (auto _ : state) chain->accept(1);
}
BENCHMARK(BM_Accept_Cpp);

void BM_Accept_C(benchmark::State& state) {
  decodelab_chain* chain = c_chain("");
  for (auto _ : state) benchmark::DoNotOptimize(decodelab_chain_accept(chain, 1));
  decodelab_chain_free(chain);
}
BENCHMARK(BM_Accept_C);

// --- a chain applied: from logits to the kept candidates ----------------------------------------
// C++: Candidates::from_logits + apply. C: decodelab_chain_apply on a copy of the logits (the
// copy is part of the loop, since apply overwrites its input) and the write-back it does.

void apply_cpp(benchmark::State& state, int vocab, const char* spec) {
  const std::vector<float> logits = make_logits(vocab);
  auto chain = parse_chain(spec);
  for (auto _ : state) {
    Candidates c = Candidates::from_logits(logits);
    chain->apply(c);
    benchmark::DoNotOptimize(c.data.data());
  }
}

void apply_c(benchmark::State& state, int vocab, const char* spec) {
  const std::vector<float> logits = make_logits(vocab);
  std::vector<float> work(logits.size());
  decodelab_chain* chain = c_chain(spec);
  int32_t selected = -1;
  for (auto _ : state) {
    std::copy(logits.begin(), logits.end(), work.begin());
    check(decodelab_chain_apply(chain, work.data(), work.size(), &selected));
    benchmark::DoNotOptimize(work.data());
  }
  decodelab_chain_free(chain);
}

// C, on the caller's candidate array (llama_token_data_array's shape), processed in place: the loop
// refills the array, as an engine writes its logits into it each step.
void apply_candidates_c(benchmark::State& state, int vocab, const char* spec) {
  const std::vector<float> logits = make_logits(vocab);
  std::vector<decodelab_token_data> work(logits.size());
  decodelab_chain* chain = c_chain(spec);
  for (auto _ : state) {
    for (std::size_t i = 0; i < logits.size(); ++i) work[i] = {int32_t(i), logits[i], 0.0f};
    decodelab_candidates c{work.data(), work.size(), -1, false};
    check(decodelab_chain_apply_candidates(chain, &c));
    benchmark::DoNotOptimize(c.size);
  }
  decodelab_chain_free(chain);
}

// The chain the embedding target is stated for: top-k, top-p and temperature on Qwen2.5's
// vocabulary (bench/python/bench_chain_overhead.py times the same through Python).
constexpr const char* kTopKTopPTemp = "top_k(k=40),top_p(p=0.95),temperature(t=0.8)";
BENCHMARK_CAPTURE(apply_cpp, large_topk_topp_temp, kLargeVocab, kTopKTopPTemp);
BENCHMARK_CAPTURE(apply_c, large_topk_topp_temp, kLargeVocab, kTopKTopPTemp);
BENCHMARK_CAPTURE(apply_candidates_c, large_topk_topp_temp, kLargeVocab, kTopKTopPTemp);
BENCHMARK_CAPTURE(apply_cpp, small_top_k, 32, "top_k(k=8),temperature(t=0.7)");
BENCHMARK_CAPTURE(apply_c, small_top_k, 32, "top_k(k=8),temperature(t=0.7)");
BENCHMARK_CAPTURE(apply_cpp, large_llama_default, kLargeVocab, kLlamaDefault);
BENCHMARK_CAPTURE(apply_c, large_llama_default, kLargeVocab, kLlamaDefault);

// --- the processed distribution: SamplerChain::probs against decodelab_chain_probs --------------

void probs_cpp(benchmark::State& state, int vocab, const char* spec) {
  const std::vector<float> logits = make_logits(vocab);
  auto chain = parse_chain(spec);
  for (auto _ : state) benchmark::DoNotOptimize(chain->probs(logits));
}

void probs_c(benchmark::State& state, int vocab, const char* spec) {
  const std::vector<float> logits = make_logits(vocab);
  std::vector<float> probs(logits.size());
  decodelab_chain* chain = c_chain(spec);
  for (auto _ : state) {
    check(decodelab_chain_probs(chain, logits.data(), logits.size(), probs.data()));
    benchmark::DoNotOptimize(probs.data());
  }
  decodelab_chain_free(chain);
}

BENCHMARK_CAPTURE(probs_cpp, small_top_p, 32, "top_p(p=0.9),temperature(t=0.7)");
BENCHMARK_CAPTURE(probs_c, small_top_p, 32, "top_p(p=0.9),temperature(t=0.7)");
BENCHMARK_CAPTURE(probs_cpp, large_top_p, kLargeVocab, "top_p(p=0.9),temperature(t=0.7)");
BENCHMARK_CAPTURE(probs_c, large_top_p, kLargeVocab, "top_p(p=0.9),temperature(t=0.7)");

// --- sampling one token with Philox, as the sample decoder does ---------------------------------

void sample_cpp(benchmark::State& state, int vocab) {
  const std::vector<float> logits = make_logits(vocab);
  auto chain = parse_chain("top_k(k=40),temperature(t=0.7)");
  uint64_t step = 0;
  for (auto _ : state) {
    Candidates c = Candidates::from_logits(logits);
    chain->apply(c);
    const std::vector<float> p = c.dense_probs(vocab);
    const double u = PhiloxStream::at_step(7, 0, step++).uniform_double();
    benchmark::DoNotOptimize(sample_from_weights(p, u));
  }
}

void sample_c(benchmark::State& state, int vocab) {
  const std::vector<float> logits = make_logits(vocab);
  decodelab_chain* chain = c_chain("top_k(k=40),temperature(t=0.7)");
  uint64_t step = 0;
  int32_t token = -1;
  for (auto _ : state) {
    check(decodelab_chain_sample(chain, logits.data(), logits.size(), 7, DECODELAB_STREAM_SAMPLE, step++, &token));
    benchmark::DoNotOptimize(token);
  }
  decodelab_chain_free(chain);
}

BENCHMARK_CAPTURE(sample_cpp, small, 32);
BENCHMARK_CAPTURE(sample_c, small, 32);
BENCHMARK_CAPTURE(sample_cpp, large, kLargeVocab);
BENCHMARK_CAPTURE(sample_c, large, kLargeVocab);

// --- verification of 4 i.i.d. drafts (SpecInfer's recursive rejection sampling) ----------------

struct VerifyCase {
  std::vector<float> p, q;
  std::vector<TokenId> candidates{3, 5, 7, 11};
  std::vector<double> accept_u{0.999, 0.998, 0.997, 0.996};  // near 1: usually all four rejected
};

VerifyCase make_verify_case(int vocab) {
  VerifyCase v;
  v.p = softmax(make_logits(vocab));
  std::vector<float> draft = make_logits(vocab);
  std::reverse(draft.begin(), draft.end());
  v.q = softmax(draft);
  return v;
}

void verify_cpp(benchmark::State& state, int vocab) {
  const VerifyCase v = make_verify_case(vocab);
  for (auto _ : state) benchmark::DoNotOptimize(speculative::verify_rrs_iid(v.p, v.q, v.candidates, v.accept_u, 0.5));
}

void verify_c(benchmark::State& state, int vocab) {
  const VerifyCase v = make_verify_case(vocab);
  decodelab_verify_result result;
  for (auto _ : state) {
    check(decodelab_verify(DECODELAB_VERIFY_RRS_IID, v.p.data(), v.q.data(), v.p.size(), v.candidates.data(),
                           v.candidates.size(), v.accept_u.data(), 0.5, 1.0, &result));
    benchmark::DoNotOptimize(result);
  }
}

BENCHMARK_CAPTURE(verify_cpp, small, 32);
BENCHMARK_CAPTURE(verify_c, small, 32);
BENCHMARK_CAPTURE(verify_cpp, large, kLargeVocab);
BENCHMARK_CAPTURE(verify_c, large, kLargeVocab);

}  // namespace
}  // namespace decodelab

BENCHMARK_MAIN();
