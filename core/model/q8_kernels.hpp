#pragma once
// The quantized dot-product kernels, once per CPU path (cpu_features.hpp), behind one table.
// Internal to core/model: q8_dot.cpp dispatches to them; tests compare the paths.
//
// A call computes one weight row against n activation vectors (tree nodes, prompt tokens),
// n <= tile: each weight block is unpacked once for all n. Every kernel defines its result the
// same way, so all paths agree bit for bit:
//   1. per block and vector, the integer products are summed exactly into eight int32 lanes,
//      lane l holding elements 4l..4l+3 of each 32-element run (the K-quants scale each run first);
//   2. each lane accumulates in float, acc[l] = fma(block scale * activation scale, lane[l], acc[l]),
//      block after block (one rounding per step, never contracted otherwise);
//   3. the lanes are summed as ((a0+a4) + (a1+a5)) + ((a2+a6) + (a3+a7)).
// Offsets and minima of the 32-element types carried by the activations' sums (Q4_0, Q4_1,
// Q5_0) accumulate in one float beside the lanes and are added last.
//
// Files: q8_kernels_scalar.cpp (plain C++), q8_kernels_avx2.cpp (-mavx2 -mfma -mf16c),
// q8_kernels_avx512vnni.cpp (adds AVX-512 VL/BW/VNNI). The vector files are compiled for their
// instructions alone and so must not instantiate any inline library code (a linker could keep that
// copy for the whole program): they use intrinsics, plain loops and memcpy only, and validate
// nothing (q8_dot.cpp does).
#include <cstddef>
#include <cstdint>

#include "core/model/q8_dot.hpp"

namespace decodelab {

// The 32-element block types with an integer path.
enum class Block32Kind { q4_0, q4_1, q5_0, q8_0 };

struct Q8RowKernels {
  // Largest n one call takes.
  int tile;
  // out[t] = row . x[t] for t < n; nb blocks of the row's type; x[t] points at nb blocks.
  void (*block32)(Block32Kind kind, const uint8_t* w, const Q8Block* const* x, int n, std::size_t nb, float* out);
  void (*q4_k)(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out);
  void (*q6_k)(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out);
};

const Q8RowKernels& q8_kernels_scalar();
const Q8RowKernels& q8_kernels_avx2();
const Q8RowKernels& q8_kernels_avx512vnni();

}  // namespace decodelab
