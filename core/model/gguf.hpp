#pragma once
// GgufFile: a read-only, memory-mapped GGUF v3 file (ggml's model container).
//
//   GgufFile f("model.gguf");
//   std::string arch = f.get_string("general.architecture");
//   const GgufTensor& w = f.tensor("blk.0.attn_q.weight");   // w.data points into the mapping
//
// Everything is validated when the file is opened: every read is bounds-checked against the file
// size, every tensor's type, shape, byte size and data range are checked, so a truncated or corrupt
// file gives a decodelab::Error(bad_format or unsupported) naming the file and the key or tensor at
// fault, never a crash. The mapping lives as long as the GgufFile; tensor data pointers borrow it.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace decodelab {

// ggml tensor types (ggml.h ids). Only the ones with a block layout we know are listed.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

// Elements per block and bytes per block; {0, 0} for an id we do not know.
struct GgmlTypeTraits {
  const char* name = nullptr;
  uint32_t block_elems = 0;
  uint32_t block_bytes = 0;
};
GgmlTypeTraits ggml_type_traits(uint32_t type);
const char* ggml_type_name(GgmlType type);

// Bytes of one row of `elems` elements (elems must be a multiple of the block size).
std::size_t ggml_row_bytes(GgmlType type, uint64_t elems);

enum class GgufValueType : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};
const char* to_string(GgufValueType type);

// One metadata value. Scalars are widened into `u`/`i`/`f`; arrays hold their elements (each a
// GgufValue of `element_type`, nested arrays allowed as the format permits).
struct GgufValue {
  GgufValueType type = GgufValueType::u8;
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers
  double f = 0.0;  // f32 / f64
  std::string s;
  GgufValueType element_type = GgufValueType::u8;  // arrays only
  std::vector<GgufValue> array;
};

struct GgufTensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is contiguous (a row)
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // relative to the data section
  const uint8_t* data = nullptr;
  std::size_t bytes = 0;

  uint64_t elements() const;
  uint64_t row_elems() const { return dims.empty() ? 1 : dims[0]; }
  uint64_t rows() const { return row_elems() == 0 ? 0 : elements() / row_elems(); }
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  std::size_t file_size() const { return size_; }

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  const GgufValue& get(const std::string& key) const;  // Error(not_found) naming file and key

  // Typed getters: Error(bad_format) naming file and key when the stored type does not fit.
  uint64_t get_uint(const std::string& key) const;
  uint64_t get_uint(const std::string& key, uint64_t fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<std::string> get_strings(const std::string& key) const;
  std::vector<float> get_floats(const std::string& key) const;
  std::vector<int64_t> get_ints(const std::string& key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;
  const GgufTensor& tensor(const std::string& name) const;  // Error(not_found) naming file and tensor

 private:
  void parse();

  std::string path_;
  int fd_ = -1;
  const uint8_t* base_ = nullptr;
  std::size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, std::size_t> tensor_index_;
};

}  // namespace decodelab
