// A Qwen2.5-0.5B-shaped model (real widths and vocabulary, 2 layers, random F16 weights written by
// random_gguf.hpp) on the GPU against the CPU runtime, and device sampling of its logits against
// the CPU sampler chain on the same logits. Needs a GPU; skips without one.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "core/cuda/cuda_model.hpp"
#include "core/cuda/sampling.hpp"
#include "core/model/gguf_model.hpp"
#include "decodelab/sampler.hpp"
#include "tests/cuda/cuda_test_support.hpp"
#include "tests/cuda/random_gguf.hpp"

namespace decodelab {
namespace {

TEST(CudaShape, Qwen05ShapeMatchesCpuAndSamplesAgree) {
  DECODELAB_REQUIRE_GPU();
  const std::string path = (std::filesystem::temp_directory_path() / "decodelab-cuda-qwen05-2l.gguf").string();
  testing::write_random_gguf(path, testing::qwen25_shape("0.5b", 2), 7);
  GgufModel cpu(path, GgufModelOptions{4096, 0});
  CudaModel gpu(path, CudaModelOptions{});
  const std::vector<TokenId> prompt = {1, 500, 151000, 77, 3000, 42};
  const std::vector<TreeNode> tree = {{11, -1}, {12, 0}, {13, 0}, {14, -1}};
  const SeqId cs = cpu.new_sequence(), gs = gpu.new_sequence();
  const double prefill = testing::max_rel_error(gpu.append(gs, prompt), cpu.append(cs, prompt));
  std::vector<Matrix> c, g;
  cpu.evaluate({{TreeEval{cs, tree}}}, c);
  gpu.evaluate({{TreeEval{gs, tree}}}, g);
  const double tree_err = testing::max_rel_error(g[0].data, c[0].data);
  std::printf("qwen2.5-0.5b shape, 2 layers, f16: relative error prefill %.3g, tree %.3g\n", prefill, tree_err);
  EXPECT_LE(prefill, 1e-2);
  EXPECT_LE(tree_err, 1e-2);

  // The device sampler on the device logits == the CPU chain on the same logits brought back.
  cuda::DeviceSampler sampler(gpu.vocab_size());
  const cuda::SamplingParams p{0.8, 100, 0.95, 0.02, 1234, 0};
  const std::vector<uint64_t> steps = {6, 7, 7, 6};
  const std::vector<TokenId> got = sampler.sample(gpu.device_logits(), int(tree.size()), p, steps, nullptr);
  for (std::size_t r = 0; r < tree.size(); ++r) {
    auto chain = parse_chain("temperature(t=0.8),top_k(k=100),top_p(p=0.95),min_p(p=0.02),dist(seed=1234,stream=0)");
    for (uint64_t i = 0; i < steps[r]; ++i) chain->accept(0);
    Candidates cand = Candidates::from_logits(g[0].row(int(r)));
    chain->apply(cand);
    EXPECT_EQ(got[r], cand.selected_token()) << "row " << r;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace decodelab
