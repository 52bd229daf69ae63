// Philox uniforms behind the C API: the numbers decodelab's decoders draw, for engines that want
// the same ones (common random numbers across engines, reproducing a decodelab run).
#include "decodelab/random.hpp"
#include "capi/guard.hpp"
#include "decodelab/philox.hpp"

using namespace decodelab;

// The header's purposes are include/decodelab/random.hpp's, value for value.
static_assert(DECODELAB_STREAM_SAMPLE == uint64_t(RandomStream::sample));
static_assert(DECODELAB_STREAM_DRAFT == uint64_t(RandomStream::draft));
static_assert(DECODELAB_STREAM_ACCEPT == uint64_t(RandomStream::accept));
static_assert(DECODELAB_STREAM_RESIDUAL == uint64_t(RandomStream::residual));
static_assert(DECODELAB_STREAM_RESAMPLE == uint64_t(RandomStream::resample));
static_assert(DECODELAB_STREAM_PROPOSAL == uint64_t(RandomStream::proposal));
static_assert(DECODELAB_STREAM_USER == uint64_t(RandomStream::user));

extern "C" {

uint64_t decodelab_stream(decodelab_stream_purpose purpose, uint64_t substream) {
  return uint64_t(purpose) + (substream << 8);  // as random_stream() in include/decodelab/random.hpp
}

decodelab_status decodelab_philox_uniforms(uint64_t seed, uint64_t stream, uint64_t step, double* out, size_t n) {
  return capi::guarded(__func__, [&] {
    if (n == 0) return;
    capi::require_ptr(out, "out");
    PhiloxStream rng = PhiloxStream::at_step(seed, stream, step);
    for (size_t i = 0; i < n; ++i) out[i] = rng.uniform_double();
  });
}

}  // extern "C"
