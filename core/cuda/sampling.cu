// Device sampling (see sampling.hpp). Per row: scale by 1/t, a stable descending radix sort of
// (logit, id) pairs (CUB; stability gives the CPU's tie order), then one 1024-thread block finds
// the kept rank-prefix (top-k, then top-p by a block scan of the renormalized masses, then min-p)
// and inverts the CDF of the kept set in token-id order with the Philox uniform.
#include <curand_kernel.h>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <cmath>

#include "core/cuda/dtype.cuh"
#include "core/cuda/kernels.hpp"
#include "core/cuda/sampling.hpp"
#include "decodelab/error.hpp"

namespace decodelab::cuda {
namespace {

constexpr int kThreads = 1024;

__global__ void scale_kernel(const float* logits, float inv_t, bool scale, float* keys, int32_t* ids, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    keys[i] = scale ? logits[i] * inv_t : logits[i];
    ids[i] = i;
  }
}

struct SelectArgs {
  const float* keys;  // sorted descending
  const int32_t* ids;
  float* dense;  // [vocab] scratch, weights by token id
  int vocab;
  int top_k;  // 0: all; 1: greedy
  double top_p, min_p;
  uint64_t seed, stream, step;
  int32_t* token;
};

using Scan = cub::BlockScan<double, kThreads>;

// First index i in [0, n) whose inclusive prefix sum of value(i) (in index order) reaches
// `target`, or n - 1 when rounding leaves the total below it; skip(i) entries never qualify.
template <class Value, class Skip>
__device__ int first_reaching(int n, double target, Value value, Skip skip, typename Scan::TempStorage& temp,
                              int* result) {
  const int per = (n + kThreads - 1) / kThreads;
  const int lo = min(n, int(threadIdx.x) * per), hi = min(n, lo + per);
  double local = 0.0;
  for (int i = lo; i < hi; ++i) local += value(i);
  double before = 0.0;
  Scan(temp).ExclusiveSum(local, before);
  if (threadIdx.x == 0) *result = n;
  __syncthreads();
  double cum = before;
  for (int i = lo; i < hi; ++i) {
    if (skip(i)) continue;
    cum += value(i);
    if (cum >= target) {
      atomicMin(result, i);
      break;
    }
  }
  __syncthreads();
  int r = *result;
  __syncthreads();
  return r;
}

// Sum of value(i) over [0, n), on every thread.
template <class Value>
__device__ double block_sum(int n, Value value, typename Scan::TempStorage& temp, double* shared) {
  double local = 0.0;
  for (int i = threadIdx.x; i < n; i += kThreads) local += value(i);
  double before = 0.0, total = 0.0;
  Scan(temp).ExclusiveSum(local, before, total);
  if (threadIdx.x == 0) *shared = total;
  __syncthreads();
  const double t = *shared;
  __syncthreads();
  return t;
}

__global__ void __launch_bounds__(kThreads) select_kernel(SelectArgs a) {
  __shared__ typename Scan::TempStorage temp;
  __shared__ int result;
  __shared__ double total;
  const float* x = a.keys;
  const float mx = x[0];
  int keep = (a.top_k > 0 && a.top_k < a.vocab) ? a.top_k : a.vocab;
  if (keep > 1 && a.top_p < 1.0) {
    // Masses renormalized over the top-k set, as Candidates::softmax: float exp, fp64 sum.
    const int k1 = keep;
    const double inv = 1.0 / block_sum(
                                 k1, [&](int i) { return double(expf(x[i] - mx)); }, temp, &total);
    const int cut = first_reaching(
        k1, a.top_p, [&](int i) { return double(float(double(expf(x[i] - mx)) * inv)); }, [](int) { return false; },
        temp, &result);
    keep = min(k1, cut + 1);
  }
  if (keep > 1 && a.min_p > 0.0) {
    const double inv = 1.0 / block_sum(
                                 keep, [&](int i) { return double(expf(x[i] - mx)); }, temp, &total);
    const double threshold = a.min_p * double(float(1.0 * inv));  // p_max: the first entry, exp(0) = 1
    // Masses fall with rank, so the passing set is a prefix: count it.
    const int k2 = keep;
    const double passing = block_sum(
        k2, [&](int i) { return double(float(double(expf(x[i] - mx)) * inv)) >= threshold ? 1.0 : 0.0; }, temp, &total);
    keep = max(1, int(passing));
  }
  if (keep == 1) {
    if (threadIdx.x == 0) *a.token = a.ids[0];
    return;
  }
  // dist: the kept set's softmax in token-id order, inverse CDF with the Philox uniform.
  const double inv = 1.0 / block_sum(
                               keep, [&](int i) { return double(expf(x[i] - mx)); }, temp, &total);
  for (int i = threadIdx.x; i < a.vocab; i += kThreads) a.dense[i] = 0.0f;
  __syncthreads();
  for (int i = threadIdx.x; i < keep; i += kThreads) a.dense[a.ids[i]] = float(double(expf(x[i] - mx)) * inv);
  __syncthreads();
  const float* w = a.dense;
  const double sum = block_sum(
      a.vocab, [&](int i) { return double(w[i]); }, temp, &total);
  __shared__ double u;
  if (threadIdx.x == 0) {
    curandStatePhilox4_32_10_t s;
    curand_init(a.seed, a.stream, a.step << 32, &s);
    const unsigned hi = curand(&s);
    const unsigned lo = curand(&s);
    u = _curand_uniform_double_hq(hi, lo);
  }
  __syncthreads();
  const int pick = first_reaching(
      a.vocab, u * sum, [&](int i) { return double(w[i]); }, [&](int i) { return w[i] <= 0.0f; }, temp, &result);
  if (threadIdx.x == 0) {
    int t = pick;
    if (t >= a.vocab) {  // u * total rounded above the accumulated sum: the last positive weight
      for (t = a.vocab - 1; t > 0 && w[t] <= 0.0f; --t) {
      }
    }
    *a.token = t;
  }
}

}  // namespace

DeviceSampler::DeviceSampler(int vocab) : vocab_(vocab) {
  if (vocab <= 0) fail(ErrorCode::invalid_argument, "DeviceSampler: vocabulary size must be positive");
  const std::size_t n = std::size_t(vocab);
  keys_in_.alloc(n * 4, "sampler keys");
  keys_out_.alloc(n * 4, "sampler sorted keys");
  ids_in_.alloc(n * 4, "sampler ids");
  ids_out_.alloc(n * 4, "sampler sorted ids");
  dense_.alloc(n * 4, "sampler weights");
  check(
      cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_temp_bytes_, keys_in_.as<float>(), keys_out_.as<float>(),
                                                ids_in_.as<int32_t>(), ids_out_.as<int32_t>(), vocab),
      "sizing the sampler's radix sort");
  sort_temp_.alloc(sort_temp_bytes_, "sampler sort workspace");
}

std::vector<TokenId> DeviceSampler::sample(const float* logits, int rows, const SamplingParams& p,
                                           std::span<const uint64_t> steps, cudaStream_t stream) {
  if (int(steps.size()) != rows) fail(ErrorCode::invalid_argument, "DeviceSampler::sample: one step per row is needed");
  if (p.temperature < 0.0) fail(ErrorCode::invalid_argument, "DeviceSampler::sample: temperature must be >= 0");
  tokens_.reserve(std::size_t(std::max(rows, 1)) * 4, "sampled tokens");
  const bool greedy = p.temperature <= 0.0;
  const float inv_t = greedy ? 1.0f : float(1.0 / p.temperature);
  for (int r = 0; r < rows; ++r) {
    scale_kernel<<<grid_for(std::size_t(vocab_), 256), 256, 0, stream>>>(
        logits + std::size_t(r) * vocab_, inv_t, !greedy && p.temperature != 1.0, keys_in_.as<float>(),
        ids_in_.as<int32_t>(), vocab_);
    check_launch("sampler scale");
    std::size_t bytes = sort_temp_bytes_;
    check(
        cub::DeviceRadixSort::SortPairsDescending(sort_temp_.get(), bytes, keys_in_.as<float>(), keys_out_.as<float>(),
                                                  ids_in_.as<int32_t>(), ids_out_.as<int32_t>(), vocab_, 0, 32, stream),
        "sampler radix sort");
    SelectArgs a{keys_out_.as<float>(),
                 ids_out_.as<int32_t>(),
                 dense_.as<float>(),
                 vocab_,
                 greedy ? 1 : int(std::min<int64_t>(p.top_k, vocab_)),
                 p.top_p,
                 p.min_p,
                 p.seed,
                 p.stream,
                 steps[std::size_t(r)],
                 tokens_.as<int32_t>() + r};
    select_kernel<<<1, kThreads, 0, stream>>>(a);
    check_launch("sampler select");
  }
  std::vector<TokenId> out(static_cast<std::size_t>(rows));
  if (rows > 0)
    check(cudaMemcpyAsync(out.data(), tokens_.get(), std::size_t(rows) * 4, cudaMemcpyDeviceToHost, stream),
          "copying sampled tokens");
  check(cudaStreamSynchronize(stream), "sampling");
  return out;
}

}  // namespace decodelab::cuda
