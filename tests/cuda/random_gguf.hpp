#pragma once
// Writes a Llama / Qwen2 GGUF of a given shape with random F16 weights (Philox-seeded), streamed
// to disk: parity tests of real model shapes without downloading a model. No tokenizer metadata.
//
//   write_random_gguf(dir + "/qwen05-2l.gguf", qwen25_shape("0.5b", 2), 7);

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/model/gguf_model.hpp"
#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"

namespace decodelab::testing {

// Qwen2.5 shapes ("0.5b", "1.5b", "7b") with `layers` layers (0: the real count).
inline LlamaConfig qwen25_shape(const std::string& size, int layers = 0) {
  LlamaConfig c;
  c.arch = "qwen2";
  c.rope_neox = true;
  c.rope_theta = 1000000.0f;
  c.norm_eps = 1e-6f;
  c.vocab = size == "7b" ? 152064 : 151936;
  if (size == "0.5b") {
    c.dim = 896, c.n_layers = 24, c.n_heads = 14, c.n_kv_heads = 2, c.hidden_dim = 4864;
  } else if (size == "1.5b") {
    c.dim = 1536, c.n_layers = 28, c.n_heads = 12, c.n_kv_heads = 2, c.hidden_dim = 8960;
  } else if (size == "7b") {
    c.dim = 3584, c.n_layers = 28, c.n_heads = 28, c.n_kv_heads = 4, c.hidden_dim = 18944;
  } else {
    fail(ErrorCode::invalid_argument, "qwen25_shape: unknown size '" + size + "' (0.5b, 1.5b, 7b)");
  }
  if (layers > 0) c.n_layers = layers;
  c.head_dim = c.dim / c.n_heads;
  c.n_rot = c.head_dim;
  c.train_context = 32768;
  return c;
}

inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (exp <= 0) {  // subnormal or zero (round to nearest even)
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    const int shift = 14 - exp;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return uint16_t(sign | h);
  }
  if (exp >= 31) return uint16_t(sign | 0x7c00u);  // our values never overflow; inf for safety
  uint32_t h = (uint32_t(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;  // a carry into the exponent is correct
  return uint16_t(sign | h);
}

class GgufStreamWriter {
 public:
  explicit GgufStreamWriter(const std::string& path) : f_(path, std::ios::binary | std::ios::trunc), path_(path) {
    if (!f_) fail(ErrorCode::invalid_argument, "cannot write " + path);
  }
  template <class T>
  void put(T v) {
    f_.write(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    f_.write(s.data(), std::streamsize(s.size()));
  }
  void pad(std::size_t align) {
    static const char zeros[64] = {};
    const std::size_t pos = std::size_t(f_.tellp());
    if (pos % align) f_.write(zeros, std::streamsize(align - pos % align));
  }
  std::ofstream& stream() { return f_; }

 private:
  std::ofstream f_;
  std::string path_;
};

inline void write_random_gguf(const std::string& path, const LlamaConfig& c, uint64_t seed) {
  struct T {
    std::string name;
    std::vector<uint64_t> dims;  // ggml order: dims[0] = row length
    uint32_t type;               // 0 = F32, 1 = F16
    float scale, shift;
  };
  const uint64_t dim = uint64_t(c.dim), q_dim = uint64_t(c.n_heads) * c.head_dim,
                 kv_dim = uint64_t(c.n_kv_heads) * c.head_dim, hidden = uint64_t(c.hidden_dim),
                 vocab = uint64_t(c.vocab);
  auto inv_sqrt = [](uint64_t n) { return float(1.0 / std::sqrt(double(n))); };
  std::vector<T> ts = {{"token_embd.weight", {dim, vocab}, 1, 1.0f, 0.0f},
                       {"output_norm.weight", {dim}, 0, 0.0f, 1.0f}};
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    ts.push_back({p + "attn_norm.weight", {dim}, 0, 0.0f, 1.0f});
    ts.push_back({p + "ffn_norm.weight", {dim}, 0, 0.0f, 1.0f});
    ts.push_back({p + "attn_q.weight", {dim, q_dim}, 1, inv_sqrt(dim), 0.0f});
    ts.push_back({p + "attn_k.weight", {dim, kv_dim}, 1, inv_sqrt(dim), 0.0f});
    ts.push_back({p + "attn_v.weight", {dim, kv_dim}, 1, inv_sqrt(dim), 0.0f});
    ts.push_back({p + "attn_output.weight", {q_dim, dim}, 1, inv_sqrt(q_dim), 0.0f});
    ts.push_back({p + "ffn_gate.weight", {dim, hidden}, 1, inv_sqrt(dim), 0.0f});
    ts.push_back({p + "ffn_up.weight", {dim, hidden}, 1, inv_sqrt(dim), 0.0f});
    ts.push_back({p + "ffn_down.weight", {hidden, dim}, 1, inv_sqrt(hidden), 0.0f});
    if (c.arch == "qwen2") {
      ts.push_back({p + "attn_q.bias", {q_dim}, 0, 0.1f, 0.0f});
      ts.push_back({p + "attn_k.bias", {kv_dim}, 0, 0.1f, 0.0f});
      ts.push_back({p + "attn_v.bias", {kv_dim}, 0, 0.1f, 0.0f});
    }
  }
  GgufStreamWriter w(path);
  const std::string a = c.arch + ".";
  w.put<uint32_t>(0x46554747);
  w.put<uint32_t>(3);
  w.put<uint64_t>(ts.size());
  w.put<uint64_t>(9);
  auto kv_u32 = [&](const std::string& k, uint32_t v) {
    w.str(k);
    w.put<uint32_t>(4);
    w.put<uint32_t>(v);
  };
  auto kv_f32 = [&](const std::string& k, float v) {
    w.str(k);
    w.put<uint32_t>(6);
    w.put<float>(v);
  };
  w.str("general.architecture");
  w.put<uint32_t>(8);
  w.str(c.arch);
  kv_u32(a + "embedding_length", uint32_t(c.dim));
  kv_u32(a + "block_count", uint32_t(c.n_layers));
  kv_u32(a + "feed_forward_length", uint32_t(c.hidden_dim));
  kv_u32(a + "attention.head_count", uint32_t(c.n_heads));
  kv_u32(a + "attention.head_count_kv", uint32_t(c.n_kv_heads));
  kv_u32(a + "context_length", uint32_t(c.train_context > 0 ? c.train_context : 4096));
  kv_f32(a + "attention.layer_norm_rms_epsilon", c.norm_eps);
  kv_f32(a + "rope.freq_base", c.rope_theta);
  uint64_t offset = 0;
  for (const T& t : ts) {
    w.str(t.name);
    w.put<uint32_t>(uint32_t(t.dims.size()));
    uint64_t n = 1;
    for (uint64_t d : t.dims) {
      w.put<uint64_t>(d);
      n *= d;
    }
    w.put<uint32_t>(t.type);
    w.put<uint64_t>(offset);
    offset += (n * (t.type == 0 ? 4 : 2) + 31) / 32 * 32;
  }
  w.pad(32);
  uint64_t sub = 0;
  for (const T& t : ts) {
    const uint64_t row = t.dims[0], rows = t.dims.size() > 1 ? t.dims[1] : 1;
    PhiloxStream r(seed, sub++);
    std::vector<uint16_t> h(row);
    std::vector<float> f(row);
    for (uint64_t i = 0; i < rows; ++i) {
      for (uint64_t j = 0; j < row; ++j) {
        const float v = float((2.0 * r.uniform_double() - 1.0) * t.scale + t.shift);
        if (t.type == 0) {
          f[j] = v;
        } else {
          h[j] = float_to_half(v);
        }
      }
      if (t.type == 0) {
        w.stream().write(reinterpret_cast<const char*>(f.data()), std::streamsize(row * 4));
      } else {
        w.stream().write(reinterpret_cast<const char*>(h.data()), std::streamsize(row * 2));
      }
    }
    w.pad(32);
  }
  if (!w.stream()) fail(ErrorCode::invalid_argument, "writing " + path + " failed");
}

}  // namespace decodelab::testing
