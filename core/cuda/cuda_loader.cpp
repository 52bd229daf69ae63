// Registers "gguf-cuda", which the gguf loader calls for gguf(path=...,backend=cuda,...). It reads
// the gguf loader's parameters (path, context, layers, device, dtype), so either spelling works.
#include "core/cuda/cuda_model.hpp"
#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"

namespace decodelab {
namespace {

const RegisterModelLoader reg_gguf_cuda({
    .name = "gguf-cuda",
    .doc = "A Llama or Qwen2 GGUF model on a CUDA device (same as gguf(backend=cuda)).",
    .params = {ParamSpec::string("path", "", "path of the .gguf file"),
               ParamSpec::integer("context", 4096, 1, 1 << 24,
                                  "cap on tokens per sequence (also capped by the model's context_length)"),
               ParamSpec::integer("layers", 0, 0, 4096, "run only the first N transformer blocks; 0 = all"),
               ParamSpec::integer("device", 0, 0, 1024, "CUDA device index"),
               ParamSpec::string("dtype", "f16", "weight type on the device", {"f16", "bf16", "f32"})},
    .load = [](const Params& p, const LanguageModel*) -> std::shared_ptr<LanguageModel> {
      if (p.get_string("path").empty())
        fail(ErrorCode::invalid_argument, "model 'gguf' (cuda): parameter 'path' is required");
      CudaModelOptions o;
      o.device = int(p.get_int("device"));
      o.context = int(p.get_int("context"));
      o.dtype = p.get_string("dtype");
      o.layers = int(p.get_int("layers"));
      return std::make_shared<CudaModel>(p.get_string("path"), o);
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(core_cuda_cuda_loader)
