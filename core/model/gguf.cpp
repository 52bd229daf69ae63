#include "core/model/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "decodelab/error.hpp"

namespace decodelab {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxNameBytes = 64;
// Arrays nest in principle; a depth limit keeps a malicious file from exhausting the stack.
constexpr int kMaxArrayDepth = 4;

// Bounds-checked little-endian reads over the mapping. Every failure names the file and what was
// being read, so a truncated file says where it ends.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* base, std::size_t size) : path_(path), base_(base), size_(size) {}

  std::size_t pos() const { return pos_; }

  void need(uint64_t bytes, const std::string& what) const {
    if (bytes > size_ - pos_) {
      fail(ErrorCode::bad_format, path_ + ": truncated GGUF file while reading " + what + " (offset " +
                                      std::to_string(pos_) + ", needs " + std::to_string(bytes) + " bytes, file has " +
                                      std::to_string(size_) + ")");
    }
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    uint64_t n = read<uint64_t>(what + " length");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* base_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

std::size_t scalar_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::u8:
    case GgufValueType::i8:
    case GgufValueType::boolean: return 1;
    case GgufValueType::u16:
    case GgufValueType::i16: return 2;
    case GgufValueType::u32:
    case GgufValueType::i32:
    case GgufValueType::f32: return 4;
    case GgufValueType::u64:
    case GgufValueType::i64:
    case GgufValueType::f64: return 8;
    default: return 0;
  }
}

GgufValueType checked_value_type(uint32_t raw, const std::string& path, const std::string& key) {
  if (raw > uint32_t(GgufValueType::f64)) {
    fail(ErrorCode::bad_format, path + ": metadata key '" + key + "' has unknown value type " + std::to_string(raw));
  }
  return GgufValueType(raw);
}

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& path, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  const std::string what = "metadata value of '" + key + "'";
  switch (type) {
    case GgufValueType::u8: v.u = c.read<uint8_t>(what); break;
    case GgufValueType::u16: v.u = c.read<uint16_t>(what); break;
    case GgufValueType::u32: v.u = c.read<uint32_t>(what); break;
    case GgufValueType::u64: v.u = c.read<uint64_t>(what); break;
    case GgufValueType::i8: v.i = c.read<int8_t>(what); break;
    case GgufValueType::i16: v.i = c.read<int16_t>(what); break;
    case GgufValueType::i32: v.i = c.read<int32_t>(what); break;
    case GgufValueType::i64: v.i = c.read<int64_t>(what); break;
    case GgufValueType::f32: v.f = c.read<float>(what); break;
    case GgufValueType::f64: v.f = c.read<double>(what); break;
    case GgufValueType::boolean: {
      uint8_t b = c.read<uint8_t>(what);
      if (b > 1) fail(ErrorCode::bad_format, path + ": metadata key '" + key + "' has bool value " + std::to_string(b));
      v.u = b;
      break;
    }
    case GgufValueType::string: v.s = c.read_string(what); break;
    case GgufValueType::array: {
      if (depth >= kMaxArrayDepth)
        fail(ErrorCode::bad_format, path + ": metadata key '" + key + "' nests arrays too deeply");
      v.element_type = checked_value_type(c.read<uint32_t>(what + " element type"), path, key);
      uint64_t n = c.read<uint64_t>(what + " element count");
      // Every element takes at least one byte: a count beyond the remaining bytes is corrupt, and
      // checking it first keeps reserve() from allocating on a lie.
      std::size_t min_bytes = std::max<std::size_t>(1, scalar_bytes(v.element_type));
      if (v.element_type == GgufValueType::string) min_bytes = 8;
      if (n > std::numeric_limits<uint64_t>::max() / min_bytes) c.need(std::numeric_limits<uint64_t>::max(), what);
      c.need(n * min_bytes, what + " (" + std::to_string(n) + " elements)");
      v.array.reserve(n);
      for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(c, v.element_type, path, key, depth + 1));
      break;
    }
  }
  return v;
}

bool is_unsigned(GgufValueType t) {
  return t == GgufValueType::u8 || t == GgufValueType::u16 || t == GgufValueType::u32 || t == GgufValueType::u64;
}
bool is_signed(GgufValueType t) {
  return t == GgufValueType::i8 || t == GgufValueType::i16 || t == GgufValueType::i32 || t == GgufValueType::i64;
}

}  // namespace

GgmlTypeTraits ggml_type_traits(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::F32: return {"F32", 1, 4};
    case GgmlType::F16: return {"F16", 1, 2};
    case GgmlType::BF16: return {"BF16", 1, 2};
    case GgmlType::Q4_0: return {"Q4_0", 32, 18};
    case GgmlType::Q4_1: return {"Q4_1", 32, 20};
    case GgmlType::Q5_0: return {"Q5_0", 32, 22};
    case GgmlType::Q5_1: return {"Q5_1", 32, 24};
    case GgmlType::Q8_0: return {"Q8_0", 32, 34};
    case GgmlType::Q8_1: return {"Q8_1", 32, 36};
    case GgmlType::Q2_K: return {"Q2_K", 256, 84};
    case GgmlType::Q3_K: return {"Q3_K", 256, 110};
    case GgmlType::Q4_K: return {"Q4_K", 256, 144};
    case GgmlType::Q5_K: return {"Q5_K", 256, 176};
    case GgmlType::Q6_K: return {"Q6_K", 256, 210};
    case GgmlType::Q8_K: return {"Q8_K", 256, 292};
    case GgmlType::I8: return {"I8", 1, 1};
    case GgmlType::I16: return {"I16", 1, 2};
    case GgmlType::I32: return {"I32", 1, 4};
    case GgmlType::I64: return {"I64", 1, 8};
    case GgmlType::F64: return {"F64", 1, 8};
  }
  return {};
}

const char* ggml_type_name(GgmlType type) {
  const char* n = ggml_type_traits(uint32_t(type)).name;
  return n ? n : "unknown";
}

std::size_t ggml_row_bytes(GgmlType type, uint64_t elems) {
  GgmlTypeTraits t = ggml_type_traits(uint32_t(type));
  if (t.block_elems == 0 || elems % t.block_elems != 0) {
    fail(ErrorCode::internal,
         std::string("ggml_row_bytes: bad row of ") + std::to_string(elems) + " " + ggml_type_name(type));
  }
  return std::size_t(elems / t.block_elems) * t.block_bytes;
}

const char* to_string(GgufValueType type) {
  static const char* names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  uint32_t i = uint32_t(type);
  return i < 13 ? names[i] : "unknown";
}

uint64_t GgufTensor::elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(ErrorCode::not_found, path + ": cannot open GGUF file: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail(ErrorCode::bad_format, path + ": not a regular file");
  }
  size_ = std::size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd_);
      fail(ErrorCode::bad_format, path + ": mmap failed: " + std::strerror(e));
    }
    base_ = static_cast<const uint8_t*>(p);
  }
  try {
    parse();
  } catch (...) {
    if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
    ::close(fd_);
    throw;
  }
}

GgufFile::~GgufFile() {
  if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void GgufFile::parse() {
  Cursor c(path_, base_, size_);
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) fail(ErrorCode::bad_format, path_ + ": not a GGUF file (bad magic)");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    fail(ErrorCode::unsupported,
         path_ + ": GGUF version " + std::to_string(version_) + " (only 2 and 3 little-endian are supported)");
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key-value pair takes at least 12 bytes and each tensor info at least 24: larger counts are
  // corrupt, and rejecting them early avoids huge allocations.
  if (n_kv > size_ / 12 || n_tensors > size_ / 24) {
    fail(ErrorCode::bad_format, path_ + ": truncated GGUF file: header claims " + std::to_string(n_kv) +
                                    " metadata entries and " + std::to_string(n_tensors) + " tensors");
  }

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("metadata key #" + std::to_string(k));
    GgufValueType type = checked_value_type(c.read<uint32_t>("value type of '" + key + "'"), path_, key);
    GgufValue v = read_value(c, type, path_, key, 0);
    if (!metadata_.emplace(key, std::move(v)).second) {
      fail(ErrorCode::bad_format, path_ + ": duplicate metadata key '" + key + "'");
    }
  }

  if (has("general.alignment")) {
    uint64_t a = get_uint("general.alignment");
    if (a == 0 || (a & (a - 1)) != 0) {
      fail(ErrorCode::bad_format, path_ + ": general.alignment " + std::to_string(a) + " is not a power of two");
    }
    alignment_ = a;
  }

  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = c.read_string("name of tensor #" + std::to_string(k));
    const std::string at = path_ + ": tensor '" + t.name + "'";
    if (t.name.size() >= kMaxNameBytes) fail(ErrorCode::bad_format, at + ": name longer than 63 bytes");
    uint32_t n_dims = c.read<uint32_t>("dimension count of tensor '" + t.name + "'");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail(ErrorCode::bad_format, at + ": " + std::to_string(n_dims) + " dimensions (1..4 allowed)");
    uint64_t elems = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>("dimensions of tensor '" + t.name + "'");
      if (ne > uint64_t(std::numeric_limits<int64_t>::max()) ||
          (ne != 0 && elems > uint64_t(std::numeric_limits<int64_t>::max()) / ne)) {
        fail(ErrorCode::bad_format, at + ": element count overflows");
      }
      elems *= ne;
      t.dims.push_back(ne);
    }
    uint32_t raw_type = c.read<uint32_t>("type of tensor '" + t.name + "'");
    GgmlTypeTraits tt = ggml_type_traits(raw_type);
    if (tt.block_elems == 0) fail(ErrorCode::unsupported, at + ": unknown ggml type " + std::to_string(raw_type));
    t.type = GgmlType(raw_type);
    if (t.dims[0] % tt.block_elems != 0) {
      fail(ErrorCode::bad_format, at + ": row of " + std::to_string(t.dims[0]) + " elements is not a whole number of " +
                                      tt.name + " blocks (" + std::to_string(tt.block_elems) + ")");
    }
    uint64_t blocks = elems / tt.block_elems;
    if (blocks > std::numeric_limits<uint64_t>::max() / tt.block_bytes)
      fail(ErrorCode::bad_format, at + ": byte size overflows");
    t.bytes = std::size_t(blocks * tt.block_bytes);
    t.offset = c.read<uint64_t>("data offset of tensor '" + t.name + "'");
    if (t.offset % alignment_ != 0) {
      fail(ErrorCode::bad_format, at + ": data offset " + std::to_string(t.offset) +
                                      " is not a multiple of the alignment " + std::to_string(alignment_));
    }
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      fail(ErrorCode::bad_format, at + ": duplicate tensor name");
    tensors_.push_back(std::move(t));
  }

  std::size_t data_start = c.pos() + (alignment_ - c.pos() % alignment_) % alignment_;
  if (data_start > size_ && !tensors_.empty()) {
    fail(ErrorCode::bad_format, path_ + ": truncated GGUF file: data section starts at " + std::to_string(data_start) +
                                    " past the end (" + std::to_string(size_) + " bytes)");
  }
  // Every tensor's bytes must lie inside the file and must not run into the next tensor's data:
  // a byte size that disagrees with the shape shows up as an overlap or a read past the end.
  std::vector<std::size_t> order(tensors_.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (std::size_t k = 0; k < order.size(); ++k) {
    GgufTensor& t = tensors_[order[k]];
    const std::string at = path_ + ": tensor '" + t.name + "'";
    std::size_t avail = size_ - data_start;
    if (t.offset > avail || t.bytes > avail - t.offset) {
      fail(ErrorCode::bad_format, at + ": data [" + std::to_string(t.offset) + ", +" + std::to_string(t.bytes) +
                                      ") lies outside the file (data section holds " + std::to_string(avail) +
                                      " bytes; truncated?)");
    }
    if (k + 1 < order.size()) {
      const GgufTensor& next = tensors_[order[k + 1]];
      if (t.offset + t.bytes > next.offset) {
        fail(ErrorCode::bad_format, at + ": " + std::to_string(t.bytes) + " bytes of " + ggml_type_name(t.type) +
                                        " data overlap tensor '" + next.name + "' (shape and offsets disagree)");
      }
    }
    t.data = base_ + data_start + t.offset;
  }
}

const GgufValue& GgufFile::get(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) fail(ErrorCode::not_found, path_ + ": missing metadata key '" + key + "'");
  return it->second;
}

uint64_t GgufFile::get_uint(const std::string& key) const {
  const GgufValue& v = get(key);
  if (is_unsigned(v.type)) return v.u;
  if (is_signed(v.type) && v.i >= 0) return uint64_t(v.i);
  fail(ErrorCode::bad_format,
       path_ + ": metadata key '" + key + "' is " + to_string(v.type) + ", expected an unsigned integer");
}
uint64_t GgufFile::get_uint(const std::string& key, uint64_t fallback) const {
  return has(key) ? get_uint(key) : fallback;
}

int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const GgufValue& v = get(key);
  if (is_signed(v.type)) return v.i;
  if (is_unsigned(v.type) && v.u <= uint64_t(std::numeric_limits<int64_t>::max())) return int64_t(v.u);
  fail(ErrorCode::bad_format, path_ + ": metadata key '" + key + "' is " + to_string(v.type) + ", expected an integer");
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type == GgufValueType::f32 || v.type == GgufValueType::f64) return v.f;
  if (is_unsigned(v.type)) return double(v.u);
  if (is_signed(v.type)) return double(v.i);
  fail(ErrorCode::bad_format, path_ + ": metadata key '" + key + "' is " + to_string(v.type) + ", expected a number");
}
double GgufFile::get_float(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}

bool GgufFile::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::boolean)
    fail(ErrorCode::bad_format, path_ + ": metadata key '" + key + "' is " + to_string(v.type) + ", expected bool");
  return v.u != 0;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::string)
    fail(ErrorCode::bad_format, path_ + ": metadata key '" + key + "' is " + to_string(v.type) + ", expected string");
  return v.s;
}
std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

std::vector<std::string> GgufFile::get_strings(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::array || v.element_type != GgufValueType::string) {
    fail(ErrorCode::bad_format, path_ + ": metadata key '" + key + "' is not an array of strings");
  }
  std::vector<std::string> out;
  out.reserve(v.array.size());
  for (const GgufValue& e : v.array) out.push_back(e.s);
  return out;
}

std::vector<float> GgufFile::get_floats(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::array ||
      (v.element_type != GgufValueType::f32 && v.element_type != GgufValueType::f64)) {
    fail(ErrorCode::bad_format, path_ + ": metadata key '" + key + "' is not an array of floats");
  }
  std::vector<float> out;
  out.reserve(v.array.size());
  for (const GgufValue& e : v.array) out.push_back(float(e.f));
  return out;
}

std::vector<int64_t> GgufFile::get_ints(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::array || !(is_signed(v.element_type) || is_unsigned(v.element_type))) {
    fail(ErrorCode::bad_format, path_ + ": metadata key '" + key + "' is not an array of integers");
  }
  std::vector<int64_t> out;
  out.reserve(v.array.size());
  for (const GgufValue& e : v.array) out.push_back(is_signed(e.type) ? e.i : int64_t(e.u));
  return out;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  const GgufTensor* t = find_tensor(name);
  if (!t) fail(ErrorCode::not_found, path_ + ": missing tensor '" + name + "'");
  return *t;
}

}  // namespace decodelab
