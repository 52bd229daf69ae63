#pragma once
// Where the real GGUF models live: $DECODELAB_MODELS, else ~/.cache/decodelab/models.

#include <cstdlib>
#include <filesystem>
#include <string>

namespace decodelab::testing {

inline std::string model_path(const std::string& file) {
  std::string dir;
  if (const char* env = std::getenv("DECODELAB_MODELS"); env && *env) {
    dir = env;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::string(home) + "/.cache/decodelab/models";
  }
  std::string path = dir + "/" + file;
  return std::filesystem::exists(path) ? path : std::string();
}

inline const char* kSmolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline const char* kQwen05 = "qwen2.5-coder-0.5b-instruct.gguf";
inline const char* kQwen15 = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

}  // namespace decodelab::testing
