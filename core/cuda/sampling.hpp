#pragma once
// Token sampling on the device, equal to the CPU sampler chain
//
//   temperature(t) -> top_k(k) -> top_p(p) -> min_p(m) -> dist(seed, stream)   (dist at `step`)
//
// on the same logits: the same ordering (logit descending, equal logits by token id), the same
// kept sets, the same inverse CDF in token-id order and the same uniform, drawn on the device by
// cuRAND Philox with the CPU's key (PhiloxStream::at_step(seed, stream, step).uniform_double()).
// Sums run in a different order than on the CPU, so a token can differ only when the uniform or a
// top-p cut falls within rounding of a boundary.
//
//   DeviceSampler s(vocab);
//   std::vector<TokenId> t = s.sample(d_logits, rows, params, steps, stream);  // one per row
//
// t == 0 means greedy (the lowest-id argmax); k == 0, p == 1 and m == 0 switch a stage off.

#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/cuda/device.hpp"
#include "decodelab/distribution.hpp"

namespace decodelab::cuda {

struct SamplingParams {
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  uint64_t seed = 0;
  uint64_t stream = 0;  // Philox subsequence, as dist(stream=...)
};

class DeviceSampler {
 public:
  explicit DeviceSampler(int vocab);

  // Samples row r of the device matrix `logits` [rows x vocab] with the uniform of step steps[r].
  // Waits for the result (one small copy back).
  std::vector<TokenId> sample(const float* logits, int rows, const SamplingParams& params,
                              std::span<const uint64_t> steps, cudaStream_t stream);

 private:
  int vocab_;
  DeviceBuffer keys_in_, keys_out_, ids_in_, ids_out_, dense_, sort_temp_, tokens_;
  std::size_t sort_temp_bytes_ = 0;
};

}  // namespace decodelab::cuda
