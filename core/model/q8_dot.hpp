#pragma once
// Dot products of quantized weight rows with 8-bit-quantized activations, in integer arithmetic.
//
// This is how llama.cpp multiplies quantized matrices on CPUs, and why it is fast: instead of
// decoding every weight to fp32 and doing one fp32 multiply-add per weight (compute bound), the
// activations are quantized once per matrix product into blocks that line up with the weight
// blocks, and each block's dot product is a handful of 8-bit multiply-add instructions on the
// weights' packed integers, scaled once per (sub-)block.
//
// The result differs from the fp32 product by the activations' rounding (relative error about
// 1e-3 per dot product); GgufModel offers both (`precision=q8`, the default, and `precision=f32`).
//
//   Q8Activations xq = quantize_activations(GgmlType::Q4_K, x, cols);   // once per input vector
//   float y_r = q8_dot(GgmlType::Q4_K, row_r, xq, cols);                // per weight row

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/model/gguf.hpp"

namespace decodelab {

// 32 activations with one scale: x[i] ~ d * q[i]. s = d * sum(q) serves weight types whose
// values carry an offset (Q4_0, Q5_0) or a minimum (Q4_1).
struct Q8Block {
  float d = 0.0f;
  float s = 0.0f;
  int8_t q[32] = {};
};

// 256 activations (one K-quant super-block) with one scale, and the sums of q over each run of 16,
// which carry the K-quants' per-sub-block minima and offsets.
struct Q8KBlock {
  float d = 0.0f;
  int8_t q[256] = {};
  int16_t bsums[16] = {};
};

// One activation vector quantized for weights of `type`: Q8Block for the 32-element block types,
// Q8KBlock for the K-quants.
struct Q8Activations {
  std::vector<Q8Block> b32;
  std::vector<Q8KBlock> b256;
};

// Types the integer path handles: Q4_0 Q4_1 Q5_0 Q8_0 Q4_K Q6_K.
bool q8_dot_supported(GgmlType type);

// Quantizes `cols` activations (a multiple of the type's block size) for weights of `type`.
void quantize_activations(GgmlType type, const float* x, std::size_t cols, Q8Activations& out);

// sum_c W[c] * x[c] for one weight row `w` of `cols` elements of `type`, with x quantized for it,
// on the CPU path active_cpu_path() names (cpu_features.hpp). Every path gives the same bits.
float q8_dot(GgmlType type, const uint8_t* w, const Q8Activations& x, std::size_t cols);

// out[t] = q8_dot(type, w, *x[t], cols) for t < n, computed together: each weight block is
// unpacked once per tile of vectors (4 on AVX2, 8 on AVX-512 VNNI). Equal to q8_dot bit for bit,
// whatever n and whichever other vectors share the call: a row's result is batch invariant.
void q8_dot_multi(GgmlType type, const uint8_t* w, const Q8Activations* const* x, int n, std::size_t cols, float* out);

// y[t * y_stride + r] = q8_dot(type, row r, *x[t], cols) for rows [row_begin, row_end) of the
// matrix at `w` (rows `row_stride` bytes apart) and tokens t < n: a block of a matrix product.
// Rows go in groups and tokens in tiles so that a tile's activations stay in the L1 cache while
// every row of a group meets them, and a group's rows stay in L2 while every tile meets them (a
// row at a time, all n tokens' activations would stream from L2 once per row). The loop order
// changes nothing in any single dot product, so y equals q8_dot bit for bit.
void q8_dot_rows(GgmlType type, const uint8_t* w, std::size_t row_stride, std::size_t row_begin, std::size_t row_end,
                 const Q8Activations* const* x, int n, std::size_t cols, float* y, std::size_t y_stride);

// The same dot product in plain scalar code summed block by block: the mathematical definition
// the kernels equal up to float summation order (they sum in eight lanes, q8_kernels.hpp).
float q8_dot_reference(GgmlType type, const uint8_t* w, const Q8Activations& x, std::size_t cols);

}  // namespace decodelab
