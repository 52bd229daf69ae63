// PhiloxStream against cuRAND's own Philox code. cuRAND's device functions are header code; with
// QUALIFIERS redefined they compile for the host too, so the bit-identity of the 32-bit words is
// checked on every machine with the CUDA toolkit, GPU or not. On a GPU, the same keys are also run
// in a kernel (uniforms included, computed with the device's fused multiply-add).
#define QUALIFIERS static inline __host__ __device__
#include <curand_kernel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "decodelab/philox.hpp"

namespace decodelab {
namespace {

struct Key {
  unsigned long long seed, subsequence, offset;
};

const std::vector<Key> kKeys = {
    {0, 0, 0},
    {1, 0, 0},
    {0xdeadbeefcafef00dull, 0, 0},
    {5, 3, 7},
    {5, 3, 1ull << 32},
    {42, 16, (9ull << 32) + 3},
    {7, 0x0000000500000003ull, 6},
    {123, 1ull << 40, 0xfffffffffffffffdull},
};

TEST(PhiloxCurand, WordsAreBitIdenticalOnTheHost) {
  for (const Key& k : kKeys) {
    curandStatePhilox4_32_10_t s;
    curand_init(k.seed, k.subsequence, k.offset, &s);
    PhiloxStream ours(k.seed, k.subsequence, k.offset);
    for (int i = 0; i < 37; ++i) {
      ASSERT_EQ(ours.next_u32(), curand(&s))
          << "seed " << k.seed << " sub " << k.subsequence << " off " << k.offset << " word " << i;
    }
  }
}

TEST(PhiloxCurand, UniformUsesTheSameWordsAndFormula) {
  // curand_uniform = word * 2^-32 + 2^-33; nvcc fuses it into one FMA on the device by default.
  for (const Key& k : kKeys) {
    curandStatePhilox4_32_10_t s;
    curand_init(k.seed, k.subsequence, k.offset, &s);
    PhiloxStream ours(k.seed, k.subsequence, k.offset);
    for (int i = 0; i < 16; ++i) {
      const unsigned word = curand(&s);
      EXPECT_EQ(ours.uniform(), std::fma(float(word), CURAND_2POW32_INV, CURAND_2POW32_INV / 2.0f));
    }
  }
}

__global__ void draw(unsigned long long seed, unsigned long long sub, unsigned long long off, unsigned* words,
                     float* uniforms) {
  curandStatePhilox4_32_10_t s;
  curand_init(seed, sub, off, &s);
  for (int i = 0; i < 8; ++i) words[i] = curand(&s);
  for (int i = 0; i < 8; ++i) uniforms[i] = curand_uniform(&s);
}

TEST(PhiloxCurand, MatchesTheDevice) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) GTEST_SKIP() << "no CUDA device";
  unsigned* words = nullptr;
  float* uniforms = nullptr;
  ASSERT_EQ(cudaMallocManaged(&words, 8 * sizeof(unsigned)), cudaSuccess);
  ASSERT_EQ(cudaMallocManaged(&uniforms, 8 * sizeof(float)), cudaSuccess);
  for (const Key& k : kKeys) {
    draw<<<1, 1>>>(k.seed, k.subsequence, k.offset, words, uniforms);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    PhiloxStream ours(k.seed, k.subsequence, k.offset);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(ours.next_u32(), words[i]);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(ours.uniform(), uniforms[i]) << "uniform " << i;
  }
  cudaFree(words);
  cudaFree(uniforms);
}

}  // namespace
}  // namespace decodelab
