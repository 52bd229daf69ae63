#include "core/cpu_features.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "decodelab/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define DECODELAB_X86 1
#endif

namespace decodelab {
namespace {

struct Features {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;
};

#ifdef DECODELAB_X86
// XCR0: may the OS save the registers of each vector width (AVX state, AVX-512 state)?
uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}
#endif

Features read_features() {
  Features f;
#ifdef DECODELAB_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  if (!osxsave) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
  f.fma = ymm_state && (c & (1u << 12));
  f.f16c = ymm_state && (c & (1u << 29));
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = ymm_state && (b & (1u << 5));
  f.avx512f = zmm_state && (b & (1u << 16));
  f.avx512bw = zmm_state && (b & (1u << 30));
  f.avx512vl = zmm_state && (b & (1u << 31));
  f.avx512vnni = zmm_state && (c & (1u << 11));
#endif
  return f;
}

const Features& features() {
  static const Features f = read_features();
  return f;
}

bool supported(CpuPath path) {
  const Features& f = features();
  switch (path) {
    case CpuPath::scalar: return true;
    case CpuPath::avx2: return f.avx2 && f.fma && f.f16c;
    case CpuPath::avx512vnni: return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
  }
  return false;
}

CpuPath initial_path() {
  if (const char* forced = std::getenv("DECODELAB_CPU_PATH"); forced && *forced) {
    const CpuPath p = parse_cpu_path(forced, "DECODELAB_CPU_PATH");
    if (!supported(p)) {
      fail(ErrorCode::invalid_argument,
           std::string("DECODELAB_CPU_PATH=") + forced +
               ", but this CPU lacks its instructions (best path: " + cpu_path_name(best_cpu_path()) + ")");
    }
    return p;
  }
  return best_cpu_path();
}

std::atomic<int>& path_slot() {
  static std::atomic<int> slot{int(initial_path())};
  return slot;
}

}  // namespace

const char* cpu_path_name(CpuPath path) {
  switch (path) {
    case CpuPath::scalar: return "scalar";
    case CpuPath::avx2: return "avx2";
    case CpuPath::avx512vnni: return "avx512vnni";
  }
  return "unknown";
}

CpuPath best_cpu_path() {
  if (supported(CpuPath::avx512vnni)) return CpuPath::avx512vnni;
  if (supported(CpuPath::avx2)) return CpuPath::avx2;
  return CpuPath::scalar;
}

CpuPath active_cpu_path() { return CpuPath(path_slot().load(std::memory_order_relaxed)); }

void set_cpu_path(CpuPath path) {
  if (!supported(path)) {
    fail(ErrorCode::invalid_argument,
         std::string("CPU path '") + cpu_path_name(path) +
             "' needs instructions this CPU lacks (best path: " + cpu_path_name(best_cpu_path()) + ")");
  }
  path_slot().store(int(path), std::memory_order_relaxed);
}

CpuPath parse_cpu_path(const std::string& name, const std::string& what) {
  for (CpuPath p : {CpuPath::scalar, CpuPath::avx2, CpuPath::avx512vnni}) {
    if (name == cpu_path_name(p)) return p;
  }
  fail(ErrorCode::invalid_argument, what + ": unknown CPU path '" + name + "' (scalar, avx2, avx512vnni)");
}

std::string cpu_description() {
  std::string brand;
#ifdef DECODELAB_X86
  unsigned regs[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i)
      __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    char text[49] = {};
    std::memcpy(text, regs, 48);
    brand = text;
    while (!brand.empty() && brand.back() == ' ') brand.pop_back();
    const std::size_t first = brand.find_first_not_of(' ');
    brand = first == std::string::npos ? "" : brand.substr(first);
  }
#endif
  if (brand.empty()) brand = "unknown CPU";
  const Features& f = features();
  std::string flags;
  auto add = [&](bool on, const char* name) {
    if (on) flags += std::string(flags.empty() ? "" : " ") + name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512vnni, "avx512vnni");
  return brand + "; " + (flags.empty() ? "no vector extensions used" : flags);
}

}  // namespace decodelab
