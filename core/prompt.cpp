#include "core/prompt.hpp"

namespace decodelab {

std::vector<TokenId> encode_prompt(const LanguageModel& model, std::string_view text) {
  std::vector<TokenId> tokens = model.tokenize(text, /*add_special=*/true);
  const ModelInfo& info = model.info();
  if (info.add_bos && info.bos >= 0 && (tokens.empty() || tokens.front() != info.bos))
    tokens.insert(tokens.begin(), info.bos);
  return tokens;
}

}  // namespace decodelab
