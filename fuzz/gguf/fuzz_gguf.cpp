// libFuzzer target for everything that reads a GGUF file: the container reader (GgufFile), the
// model loader's checks of hyperparameters, tensor shapes and types (GgufModel), the tokenizer
// built from the file's vocabulary, and one forward pass when a model loads. Any byte string must
// load or raise decodelab::Error; never crash, read out of bounds, hang or leak (ASan + UBSan).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/gguf.hpp"
#include "core/model/gguf_model.hpp"
#include "decodelab/error.hpp"

namespace {

// GgufFile maps a path; an anonymous in-memory file gives the fuzzer's bytes one without disk I/O.
std::string as_file(const uint8_t* data, std::size_t size, int& fd) {
  fd = memfd_create("fuzz.gguf", 0);
  if (fd < 0) __builtin_trap();
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) __builtin_trap();
    done += std::size_t(n);
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace decodelab;
  int fd = -1;
  const std::string path = as_file(data, size, fd);
  try {
    GgufFile f(path);
    // Every tensor the reader accepted lies inside the file: touching its last byte is legal.
    volatile uint8_t sink = 0;
    for (const GgufTensor& t : f.tensors()) {
      if (t.bytes) sink = sink + t.data[t.bytes - 1];
    }
    (void)sink;
  } catch (const Error&) {
  }
  try {
    GgufModel m(path, GgufModelOptions{64, 1});
    const SeqId s = m.new_sequence();
    std::vector<TokenId> prompt{0};
    if (m.has_tokenizer()) {
      const std::vector<TokenId> ids = m.tokenize("fuzz: héllo 世界 \xff 123", true);
      if (!ids.empty() && ids.size() < 32) prompt = ids;
      (void)m.detokenize(ids);
    }
    m.append(s, prompt);
  } catch (const Error&) {
  }
  close(fd);
  return 0;
}
