#pragma once
// Tokenizers built from a GGUF vocabulary (tokenizer.ggml.* metadata):
//   "gpt2"  byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM, ...): pre-tokenize with the regex set named
//           by tokenizer.ggml.pre, map bytes to GPT-2's printable alphabet, merge by rank.
//   "llama" SentencePiece-style BPE: spaces as U+2581, merges by highest score, <0xNN> byte fallback.
// Control and user-defined tokens (<|im_start|>, <|endoftext|>, ...) are matched literally in the
// text when parse_special is set. encode(decode(x)) need not equal x. With byte-level BPE,
// decode(encode(s, false, ...)) == s for every byte string s (invalid UTF-8 included) whose bytes all
// have a token; a byte without one is dropped when encoding, as llama.cpp does, so the round trip
// gives s without those bytes. Qwen2's vocabulary has all 256 bytes. SmolLM2's lacks 21: the control
// characters 0x04 0x06 0x13 0x14 0x16 0x1d, the bytes 0xc0 0xc1 0xf5..0xff that UTF-8 never holds,
// and 0xf1 0xf2, which lead the (unassigned) code points U+40000..U+BFFFF, whose remaining bytes are
// kept.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace decodelab {

struct TokenizerVocab {
  std::string model;  // tokenizer.ggml.model: "gpt2" or "llama"
  std::string pre;    // tokenizer.ggml.pre: "llama-bpe", "qwen2", "smollm", "gpt2", "default", ...
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> token_types;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;   // "left right", in rank order (gpt2 only)
  int32_t bos = -1, eos = -1, eot = -1, pad = -1, unk = -1;
  bool add_bos = false, add_eos = false;
  std::string chat_template;
};

class PreTokenizer;  // regex splitting, tokenizer.cpp

class Tokenizer {
 public:
  // Validates the vocabulary; throws decodelab::Error naming the problem (unknown model or pre,
  // malformed merge, ids out of range).
  explicit Tokenizer(TokenizerVocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The bytes the tokens stand for (control tokens as their literal text). May end inside a UTF-8
  // sequence when the last token is a partial character.
  std::string decode(std::span<const int32_t> tokens) const;
  std::string token_text(int32_t token) const;
  int32_t vocab_size() const { return int32_t(vocab_.tokens.size()); }
  const TokenizerVocab& vocab() const { return vocab_; }

 private:
  void encode_fragment(std::string_view text, std::vector<int32_t>& out) const;
  void bpe_piece(const std::string& piece, std::vector<int32_t>& out) const;
  void spm_fragment(std::string_view text, bool first, std::vector<int32_t>& out) const;
  int32_t byte_token(unsigned char byte) const;

  TokenizerVocab vocab_;
  std::unordered_map<std::string, int32_t> token_ids_;
  std::unordered_map<std::string, int32_t> merge_ranks_;  // "left right" -> rank
  std::vector<std::string> specials_;                     // literal texts, longest first
  std::vector<int32_t> special_ids_;
  std::unique_ptr<PreTokenizer> pre_;
  bool ignore_merges_ = false;  // Llama-3: a piece that is already a token is not merged
  int32_t byte_tokens_[256];    // SPM <0xNN> tokens (-1 when absent)
};

}  // namespace decodelab
