#pragma once
// Shared helpers of the CUDA backend tests: device detection with a skip message, golden model
// paths, and logits comparison by max relative error (max |a - b| over max |b|).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>

#include "core/cuda/device.hpp"

namespace decodelab::testing {

#define DECODELAB_REQUIRE_GPU()                                                                   \
  do {                                                                                            \
    if (::decodelab::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine"; \
  } while (0)

inline std::string golden_path(const std::string& file) {
  return std::string(DECODELAB_SOURCE_DIR) + "/tests/data/" + file;
}

inline double max_rel_error(std::span<const float> got, std::span<const float> want) {
  double err = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    err = std::max(err, std::fabs(double(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return scale > 0.0 ? err / scale : err;
}

}  // namespace decodelab::testing
