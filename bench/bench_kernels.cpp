// Microbenchmarks of the CPU kernels, one thread, per kernel path (cpu_features.hpp): the
// quantized row dot products against n activation vectors (n = 1: decoding; 4-16: tree
// verification; 64: a prefill chunk) for each quantized type of the supported models, and the
// activation quantization that precedes them. Paths this CPU lacks are skipped with a message.
//
//   build/bin/bench_kernels --benchmark_filter='Q4_K'   (CPU time per call; rows x n x cols in
//   the counter "MAC/s")
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/model/gguf.hpp"
#include "core/model/q8_dot.hpp"
#include "decodelab/error.hpp"

namespace decodelab {
namespace {

constexpr std::size_t kRows = 256, kCols = 1536;

// Random blocks of `type` with sane fp16 scales (random bytes there could be inf or NaN).
std::vector<uint8_t> random_rows(GgmlType type) {
  const std::size_t row_bytes = ggml_row_bytes(type, kCols);
  std::vector<uint8_t> w(kRows * row_bytes);
  std::mt19937 rng(7);
  for (auto& b : w) b = uint8_t(rng());
  const auto& traits = ggml_type_traits(uint32_t(type));
  std::vector<std::size_t> scale_offsets;
  switch (type) {
    case GgmlType::Q4_1:
    case GgmlType::Q4_K: scale_offsets = {0, 2}; break;
    case GgmlType::Q6_K: scale_offsets = {208}; break;
    default: scale_offsets = {0}; break;
  }
  const uint16_t sixteenth = 0x2c00;  // 0.0625 in fp16
  for (std::size_t b = 0; b < w.size() / traits.block_bytes; ++b) {
    for (std::size_t o : scale_offsets) std::memcpy(&w[b * traits.block_bytes + o], &sixteenth, 2);
  }
  return w;
}

void BM_RowDots(benchmark::State& state, GgmlType type, CpuPath path) {
  try {
    set_cpu_path(path);
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  const int n = int(state.range(0));
  const std::vector<uint8_t> w = random_rows(type);
  const std::size_t row_bytes = ggml_row_bytes(type, kCols);
  std::vector<Q8Activations> xq(static_cast<std::size_t>(n));
  std::vector<const Q8Activations*> xp;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(kCols);
  for (auto& a : xq) {
    for (float& v : x) v = normal(rng);
    quantize_activations(type, x.data(), kCols, a);
    xp.push_back(&a);
  }
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : state) {
    for (std::size_t r = 0; r < kRows; ++r)
      q8_dot_multi(type, w.data() + r * row_bytes, xp.data(), n, kCols, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["MAC/s"] =
      benchmark::Counter(double(kRows * kCols) * n * double(state.iterations()), benchmark::Counter::kIsRate);
  set_cpu_path(best_cpu_path());
}

void BM_QuantizeActivations(benchmark::State& state, GgmlType type) {
  std::vector<float> x(kCols);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  Q8Activations xq;
  for (auto _ : state) {
    quantize_activations(type, x.data(), kCols, xq);
    benchmark::DoNotOptimize(xq.b32.data());
  }
  state.counters["values/s"] =
      benchmark::Counter(double(kCols) * double(state.iterations()), benchmark::Counter::kIsRate);
}

void register_all() {
  for (GgmlType type :
       {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    for (CpuPath path : {CpuPath::scalar, CpuPath::avx2, CpuPath::avx512vnni}) {
      const std::string name = std::string("RowDots/") + ggml_type_name(type) + "/" + cpu_path_name(path);
      auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_RowDots, type, path);
      if (path == CpuPath::scalar) {
        b->Arg(1)->Arg(8);
      } else {
        b->Arg(1)->Arg(4)->Arg(8)->Arg(16)->Arg(64);
      }
    }
    benchmark::RegisterBenchmark((std::string("QuantizeActivations/") + ggml_type_name(type)).c_str(),
                                 BM_QuantizeActivations, type);
  }
}

}  // namespace
}  // namespace decodelab

int main(int argc, char** argv) {
  decodelab::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
