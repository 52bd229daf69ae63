#pragma once
// Dequantization and matrix products for the ggml tensor types the runtime reads.
//
// Block layouts follow ggml (see docs/runtime.md): blocks run along a row (the reduction
// dimension), so a row of `cols` elements is cols / block_elems whole blocks.

#include <cstddef>
#include <cstdint>

#include "core/model/gguf.hpp"

namespace decodelab {

class ThreadTeam;

float fp16_to_float(uint16_t h);
float bf16_to_float(uint16_t h);

// True for the types dequantize_row and matmul accept: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q8_0 Q4_K Q6_K.
bool quant_supported(GgmlType type);

// Decodes one row of `n` elements (a multiple of the type's block size) from `src` into `dst`.
// Throws Error(unsupported) for other types.
void dequantize_row(GgmlType type, const uint8_t* src, float* dst, std::size_t n);

// How matmul computes products with quantized weights:
//  f32: decode each weight row to fp32 and dot in fp32 (exact up to fp32 rounding; what HF
//       transformers computes on the dequantized weights);
//  q8:  quantize the activations to 8 bits per block once and use integer dot products
//       (q8_dot.hpp; llama.cpp's numerics, several times faster). F32/F16/BF16 weights always use f32.
enum class MatmulPrecision { f32, q8 };

// y[t][r] = sum_c W[r][c] * x[t][c] for r < rows, t < tokens.
// W: `rows` rows of `cols` elements of `type`, contiguous (row stride ggml_row_bytes(type, cols)).
// x: tokens x cols row-major; y: tokens x rows row-major. Each weight row is decoded once and
// reused for every token, so evaluating T tree nodes costs about one pass over the weights.
// Rows are split in chunks across `team` (thread_team.hpp); each row's result does not depend on
// the team's size or on which tokens share the call.
void matmul(GgmlType type, const uint8_t* W, std::size_t rows, std::size_t cols, const float* x, std::size_t tokens,
            float* y, ThreadTeam& team, MatmulPrecision precision = MatmulPrecision::f32);

// The same on the process-wide team of `threads` members (shared_thread_team; 0 = all cores).
void matmul(GgmlType type, const uint8_t* W, std::size_t rows, std::size_t cols, const float* x, std::size_t tokens,
            float* y, int threads = 0, MatmulPrecision precision = MatmulPrecision::f32);

}  // namespace decodelab
