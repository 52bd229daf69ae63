// The CPU kernel paths (core/cpu_features.hpp) against each other: every path this CPU has
// gives the scalar kernels' results bit for bit, for every quantized type and every number of
// vectors per call, and a vector's result never depends on the others in its call. A path the
// CPU lacks is skipped with its name and the CPU's best path.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/model/gguf.hpp"
#include "core/model/gguf_model.hpp"
#include "core/model/q8_dot.hpp"
#include "core/model/quants.hpp"
#include "decodelab/error.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

const std::string kFixture = std::string(DECODELAB_SOURCE_DIR) + "/tests/data/quant_rows.gguf";

// Sets a path for one scope and restores the one before.
class PathScope {
 public:
  explicit PathScope(CpuPath p) : saved_(active_cpu_path()) { set_cpu_path(p); }
  ~PathScope() { set_cpu_path(saved_); }

 private:
  CpuPath saved_;
};

bool cpu_has(CpuPath p) {
  try {
    PathScope scope(p);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::vector<float> random_activations(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  x[(seed * 7) % n] = 9.0f;  // an outlier sets its block's scale, as in real activations
  return x;
}

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

class CpuPathTest : public ::testing::TestWithParam<CpuPath> {
 protected:
  void SetUp() override {
    if (!cpu_has(GetParam())) {
      GTEST_SKIP() << "this CPU lacks the " << cpu_path_name(GetParam())
                   << " path (best: " << cpu_path_name(best_cpu_path()) << "; " << cpu_description() << ")";
    }
  }
};

TEST_P(CpuPathTest, EqualsTheScalarKernelsBitForBit) {
  GgufFile file(kFixture);
  int types = 0;
  for (const GgufTensor& raw : file.tensors()) {
    if (raw.name.find(".raw") == std::string::npos || !q8_dot_supported(raw.type)) continue;
    ++types;
    const std::size_t cols = raw.row_elems(), stride = ggml_row_bytes(raw.type, cols);
    constexpr int kVectors = 19;  // more than two tiles of every path, and a ragged last tile
    std::vector<Q8Activations> xq(kVectors);
    std::vector<const Q8Activations*> xp;
    for (int t = 0; t < kVectors; ++t) {
      const std::vector<float> x = random_activations(cols, unsigned(100 + t));
      quantize_activations(raw.type, x.data(), cols, xq[std::size_t(t)]);
      xp.push_back(&xq[std::size_t(t)]);
    }
    for (std::size_t r = 0; r < raw.rows(); ++r) {
      const uint8_t* w = raw.data + r * stride;
      for (int n : {1, 2, 3, 4, 5, 8, 9, kVectors}) {
        std::vector<float> want(std::size_t(n), 0.0f), got(std::size_t(n), 0.0f);
        {
          PathScope scalar(CpuPath::scalar);
          q8_dot_multi(raw.type, w, xp.data(), n, cols, want.data());
        }
        {
          PathScope path(GetParam());
          q8_dot_multi(raw.type, w, xp.data(), n, cols, got.data());
        }
        for (int t = 0; t < n; ++t) {
          ASSERT_EQ(bits(got[std::size_t(t)]), bits(want[std::size_t(t)]))
              << raw.name << " row " << r << ", vector " << t << " of " << n << ": " << got[std::size_t(t)] << " on "
              << cpu_path_name(GetParam()) << ", " << want[std::size_t(t)] << " on scalar";
        }
      }
    }
  }
  EXPECT_GE(types, 6);
}

// A vector's result is the same whatever shares its call and wherever it sits in a tile.
TEST_P(CpuPathTest, AVectorsResultDoesNotDependOnItsBatch) {
  PathScope path(GetParam());
  GgufFile file(kFixture);
  for (const GgufTensor& raw : file.tensors()) {
    if (raw.name.find(".raw") == std::string::npos || !q8_dot_supported(raw.type)) continue;
    const std::size_t cols = raw.row_elems();
    std::vector<Q8Activations> xq(12);
    for (std::size_t t = 0; t < xq.size(); ++t) {
      const std::vector<float> x = random_activations(cols, unsigned(300 + t));
      quantize_activations(raw.type, x.data(), cols, xq[t]);
    }
    const Q8Activations* probe = &xq[0];
    const float alone = q8_dot(raw.type, raw.data, *probe, cols);
    for (std::size_t at = 0; at < xq.size(); ++at) {
      std::vector<const Q8Activations*> batch;
      for (std::size_t t = 1; t < xq.size(); ++t) batch.push_back(&xq[t]);
      batch.insert(batch.begin() + std::ptrdiff_t(at), probe);
      std::vector<float> out(batch.size());
      q8_dot_multi(raw.type, raw.data, batch.data(), int(batch.size()), cols, out.data());
      ASSERT_EQ(bits(out[at]), bits(alone)) << raw.name << ": the probe at position " << at;
    }
  }
}

// The whole forward pass of the real model (Q4_1 and Q8_0 weights) on this path: the same logits,
// bit for bit, as on the scalar path, for a chain of several tokens.
TEST_P(CpuPathTest, SmolLM2LogitsEqualTheScalarPath) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  GgufModel model(path, GgufModelOptions{256, 2});
  const std::vector<TokenId> tokens = {504, 3458, 282, 4649, 314};
  auto logits = [&](CpuPath p) {
    PathScope scope(p);
    const SeqId s = model.new_sequence();
    const std::span<const float> l = model.append(s, tokens);
    std::vector<float> out(l.begin(), l.end());
    model.free_sequence(s);
    return out;
  };
  const std::vector<float> want = logits(CpuPath::scalar), got = logits(GetParam());
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(bits(got[i]), bits(want[i])) << "logit " << i << " on " << cpu_path_name(GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, CpuPathTest, ::testing::Values(CpuPath::avx2, CpuPath::avx512vnni),
                         [](const ::testing::TestParamInfo<CpuPath>& info) { return cpu_path_name(info.param); });

TEST(CpuPaths, ForcingAPathTheCpuLacksOrAnUnknownOneIsAClearError) {
  EXPECT_THROW(parse_cpu_path("sse9", "test"), Error);
  try {
    parse_cpu_path("sse9", "DECODELAB_CPU_PATH");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sse9"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("avx2"), std::string::npos) << e.what();
  }
  if (best_cpu_path() != CpuPath::avx512vnni) {
    EXPECT_THROW(set_cpu_path(CpuPath::avx512vnni), Error);
  }
  EXPECT_NO_THROW(set_cpu_path(CpuPath::scalar));
  EXPECT_EQ(active_cpu_path(), CpuPath::scalar);
  set_cpu_path(best_cpu_path());
  EXPECT_FALSE(cpu_description().empty());
}

}  // namespace
}  // namespace decodelab
