// bench_cuda: batch-1 decode speed and tree-verification time of CudaModel on Qwen2.5 shapes with
// random fp16 weights generated on the device, against the device's measured copy bandwidth.
//
//   bench_cuda [--shapes 0.5b,1.5b,7b] [--context 512] [--steps 128] [--out results.jsonl]
//
// decode: evaluate one node + commit it, through the LanguageModel interface (logits come back to
// the host every step), after a prefill of `context` tokens. verify: evaluate a T-node tree (a
// binary-ish tree: node i's parent is (i - 1) / 2) on the same prefix, T = 1, 4, 16, 64; the pending
// tree is replaced by the next evaluation, so every repetition sees the same prefix.
// roofline: bytes one decode step must read (weights + the prefix's K/V) / copy bandwidth.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/cuda/cuda_model.hpp"
#include "core/cuda/device.hpp"
#include "tests/cuda/random_gguf.hpp"

using namespace decodelab;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Device-to-device copy of 2 GiB, bytes read + written per second (median of 10).
double copy_bandwidth() {
  const std::size_t bytes = std::size_t(2) << 30;
  cuda::DeviceBuffer a(bytes, "bandwidth source"), b(bytes, "bandwidth destination");
  cuda::check(cudaMemset(a.get(), 1, bytes), "memset");
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> t;
  for (int i = 0; i < 13; ++i) {
    cudaEventRecord(e0);
    cuda::check(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice), "copy");
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 3) t.push_back(ms * 1e-3);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return 2.0 * double(bytes) / median(t);
}

}  // namespace

int main(int argc, char** argv) {
  std::string shapes = "0.5b,1.5b,7b", out_path;
  int context = 512, steps = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--shapes") shapes = v;
    else if (k == "--context") context = std::stoi(v);
    else if (k == "--steps") steps = std::stoi(v);
    else if (k == "--out") out_path = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    cuda::select_device(0);
    const double bw = copy_bandwidth();
    std::printf("copy bandwidth (read + write): %.0f GB/s\n", bw * 1e-9);
    std::ofstream jsonl;
    if (!out_path.empty()) jsonl.open(out_path);
    std::printf("%-6s %-8s %10s %10s %9s | verify ms: %8s %8s %8s %8s\n", "shape", "weights", "decode/s", "ms/token",
                "roofline", "T=1", "T=4", "T=16", "T=64");
    std::stringstream list(shapes);
    for (std::string shape; std::getline(list, shape, ',');) {
      LlamaConfig cfg = testing::qwen25_shape(shape);
      CudaModelOptions o;
      o.context = context + steps + 128;
      auto model = CudaModel::random(cfg, 1, o);
      std::vector<TokenId> prompt(static_cast<std::size_t>(context));
      for (int i = 0; i < context; ++i) prompt[std::size_t(i)] = TokenId((i * 7919) % cfg.vocab);
      const SeqId s = model->new_sequence();
      model->append(s, prompt);
      // Decode: warm up (graph capture), then time `steps` single-token steps.
      std::vector<Matrix> out;
      auto step = [&](TokenId t) {
        model->evaluate({{TreeEval{s, {{t, -1}}}}}, out);
        const int32_t zero = 0;
        model->commit(s, std::span<const int32_t>(&zero, 1));
      };
      for (int i = 0; i < 8; ++i) step(TokenId(i));
      const double t0 = now_s();
      for (int i = 0; i < steps; ++i) step(TokenId((i * 31) % cfg.vocab));
      const double per_token = (now_s() - t0) / steps;
      const std::size_t len = model->length(s);
      const double roofline = double(model->bytes_per_token(len)) / (bw / 2.0);  // copy moves each byte twice
      std::vector<double> verify;
      for (int T : {1, 4, 16, 64}) {
        std::vector<TreeNode> tree;
        for (int i = 0; i < T; ++i) tree.push_back({TokenId((i * 101) % cfg.vocab), i == 0 ? -1 : (i - 1) / 2});
        std::vector<double> t;
        for (int r = 0; r < 23; ++r) {
          const double a = now_s();
          model->evaluate({{TreeEval{s, tree}}}, out);
          if (r >= 3) t.push_back(now_s() - a);
        }
        verify.push_back(median(t));
      }
      model->rollback(s, len);
      std::printf("%-6s %6.2fGB %10.1f %10.3f %8.1f%% | %8.3f %8.3f %8.3f %8.3f\n", shape.c_str(),
                  double(model->weight_bytes()) * 1e-9, 1.0 / per_token, per_token * 1e3, 100.0 * roofline / per_token,
                  verify[0] * 1e3, verify[1] * 1e3, verify[2] * 1e3, verify[3] * 1e3);
      if (jsonl) {
        jsonl << "{\"engine\":\"decodelab-cuda\",\"shape\":\"" << shape << "\",\"dtype\":\"f16\",\"context\":" << len
              << ",\"decode_tokens_per_s\":" << 1.0 / per_token << ",\"roofline_fraction\":" << roofline / per_token
              << ",\"bytes_per_token\":" << model->bytes_per_token(len) << ",\"copy_bandwidth_Bps\":" << bw
              << ",\"graph_replays\":" << model->graph_replays() << ",\"verify_ms\":{\"1\":" << verify[0] * 1e3
              << ",\"4\":" << verify[1] * 1e3 << ",\"16\":" << verify[2] * 1e3 << ",\"64\":" << verify[3] * 1e3
              << "}}\n";
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
