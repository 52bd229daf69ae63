#pragma once
// Which instruction-set path the CPU kernels take, chosen at run time.
//
// One binary runs on every x86-64 machine the project meets: AMD EPYCs with AVX2 only and Intel
// Xeons with AVX-512 (BW, VL, VNNI). The quantized dot-product kernels exist once per path, each
// compiled for its instructions alone, and the fastest path this CPU has is picked once, by cpuid.
//
//   scalar       plain C++; the definition the others are tested against
//   avx2         AVX2 + FMA + F16C (maddubs/madd integer dot products)
//   avx512vnni   AVX-512 VL/BW + VNNI (vpdpbusd, vpdpwssd; 512-bit integer work for the K-quants), tiles of 8
//                tokens over the 32 vector registers
//
// Every path gives the same result bit for bit: the integer sums are exact and are gathered into
// the same eight 32-bit lanes, and the float accumulation runs in one fixed order
// (core/model/q8_kernels.hpp, docs/cpu-kernels.md). A model's logits do not depend on the path.
//
// The environment variable DECODELAB_CPU_PATH (scalar, avx2 or avx512vnni) forces a path for
// A/B measurements; naming one this CPU lacks is an error, not a silent fallback.
#include <string>

namespace decodelab {

enum class CpuPath { scalar = 0, avx2 = 1, avx512vnni = 2 };

const char* cpu_path_name(CpuPath path);

// The best path this CPU supports (cpuid, read once).
CpuPath best_cpu_path();

// The path the kernels take: DECODELAB_CPU_PATH when set (read once), else best_cpu_path(), unless
// set_cpu_path changed it.
CpuPath active_cpu_path();

// Forces a path (benchmarks and tests compare paths in one process). Error(invalid_argument) when
// the CPU lacks it. Not thread-safe against running kernels: call it between forward passes.
void set_cpu_path(CpuPath path);

// Parses "scalar" / "avx2" / "avx512vnni" (Error naming `what` and the accepted names otherwise).
CpuPath parse_cpu_path(const std::string& name, const std::string& what);

// The CPU's brand string and its vector features, for benchmark reports ("AMD EPYC 7763 ...;
// avx2 fma f16c"), read from cpuid.
std::string cpu_description();

}  // namespace decodelab
