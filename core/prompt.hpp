#pragma once
// Prompt encoding, in one place for the CLI, the benchmarks and the daemon.
//
// A prompt starts with the model's bos token exactly once when the model asks for one
// (ModelInfo::add_bos): a tokenizer that adds special tokens itself (GGUF with
// tokenizer.ggml.add_bos_token) is not given a second one, and a model whose tokenize() does not
// add it (analytic models) gets it prepended here.
#include <string_view>
#include <vector>

#include "decodelab/language_model.hpp"

namespace decodelab {

// The tokens of `text` as a prompt for `model`; throws what model.tokenize throws.
std::vector<TokenId> encode_prompt(const LanguageModel& model, std::string_view text);

}  // namespace decodelab
