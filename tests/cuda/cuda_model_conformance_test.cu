// The LanguageModel conformance suite (tests/support/language_model_conformance.hpp) on the CUDA
// backend, with the tiny golden fixtures. Every case skips without a CUDA device.
//
// Nothing is promised bit for bit here: cuBLAS picks its GEMM kernels by shape, so a token's logits
// depend on how many nodes share the evaluation, and 16-bit weights and KV round a different fp32
// sum to a different 16-bit value. The bounds are the parity tests' (cuda_parity_test.cu) for GPU
// against GPU at another batch shape: 1e-4 of the largest logit with fp32 weights (summation order
// only), 1e-2 with fp16 (its rounding).
#include <memory>
#include <string>

#include "core/cuda/cuda_model.hpp"
#include "core/cuda/device.hpp"
#include "tests/cuda/cuda_test_support.hpp"
#include "tests/support/language_model_conformance.hpp"

namespace decodelab::testing {
namespace {

ConformanceCase cuda_case(std::string name, std::string file, std::string dtype) {
  const Agreement agree = dtype == "f32"
                              ? Agreement{1e-4, "cuBLAS kernels chosen by batch shape: fp32 summation order"}
                              : Agreement{1e-2, "cuBLAS kernels chosen by batch shape, rounded to fp16 weights and KV"};
  auto make = [file, dtype]() -> std::shared_ptr<LanguageModel> {
    if (cuda::device_count() == 0) return nullptr;
    CudaModelOptions o;
    o.dtype = dtype;
    o.context = 64;     // the context-overflow test evaluates a whole context
    o.page_tokens = 4;  // forks share partly filled pages, so commits copy them on write
    return std::make_shared<CudaModel>(golden_path(file), o);
  };
  return ConformanceCase{std::move(name), make, agree, agree, agree, "no CUDA device on this machine"};
}

INSTANTIATE_TEST_SUITE_P(Cuda, LanguageModelConformance,
                         ::testing::Values(cuda_case("tiny_llama_f32", "tiny-llama.gguf", "f32"),
                                           cuda_case("tiny_qwen2_f32", "tiny-qwen2.gguf", "f32"),
                                           cuda_case("tiny_llama_f16", "tiny-llama.gguf", "f16")),
                         conformance_case_name);

}  // namespace
}  // namespace decodelab::testing
