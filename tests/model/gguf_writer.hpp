#pragma once
// A minimal GGUF byte builder for hand-made (and deliberately corrupt) test files.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace decodelab::testing {

struct GgufBytes {
  std::vector<uint8_t> b;

  template <class T>
  void put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void pad(std::size_t align) {
    while (b.size() % align) b.push_back(0);
  }
};

// One tensor for make_gguf: raw bytes with the given ggml type id and dims.
struct RawTensor {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = 0;
  std::vector<uint8_t> data;
};

// A valid v3 file with a few metadata values of every scalar kind plus arrays, and `tensors`.
inline std::vector<uint8_t> make_gguf(const std::vector<RawTensor>& tensors, uint32_t alignment = 32) {
  GgufBytes g;
  g.put<uint32_t>(0x46554747);
  g.put<uint32_t>(3);
  g.put<uint64_t>(tensors.size());
  g.put<uint64_t>(7);
  g.str("general.architecture");
  g.put<uint32_t>(8);
  g.str("llama");
  g.str("general.alignment");
  g.put<uint32_t>(4);
  g.put<uint32_t>(alignment);
  g.str("test.f32");
  g.put<uint32_t>(6);
  g.put<float>(1.5f);
  g.str("test.i16");
  g.put<uint32_t>(3);
  g.put<int16_t>(-7);
  g.str("test.bool");
  g.put<uint32_t>(7);
  g.put<uint8_t>(1);
  g.str("test.strings");
  g.put<uint32_t>(9);
  g.put<uint32_t>(8);
  g.put<uint64_t>(2);
  g.str("a");
  g.str("bc");
  g.str("test.f64s");
  g.put<uint32_t>(9);
  g.put<uint32_t>(12);
  g.put<uint64_t>(2);
  g.put<double>(0.25);
  g.put<double>(-2.0);
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const RawTensor& t : tensors) {
    g.str(t.name);
    g.put<uint32_t>(t.dims.size());
    for (uint64_t d : t.dims) g.put<uint64_t>(d);
    g.put<uint32_t>(t.type);
    g.put<uint64_t>(offset);
    offsets.push_back(offset);
    offset += (t.data.size() + alignment - 1) / alignment * alignment;
  }
  g.pad(alignment);
  for (const RawTensor& t : tensors) {
    g.b.insert(g.b.end(), t.data.begin(), t.data.end());
    g.pad(alignment);
  }
  return g.b;
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace decodelab::testing
