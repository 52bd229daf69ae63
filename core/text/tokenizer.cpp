#include "core/text/tokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "core/utf8.hpp"
#include "decodelab/error.hpp"

namespace decodelab {

namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves; the other 68 bytes are
// shifted to U+0100.. so that every byte has a visible, non-space character.
struct ByteAlphabet {
  uint32_t byte_to_cp[256];
  std::unordered_map<uint32_t, unsigned char> cp_to_byte;
  ByteAlphabet() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      byte_to_cp[b] = printable ? uint32_t(b) : next++;
      cp_to_byte[byte_to_cp[b]] = (unsigned char)b;
    }
  }
};
const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

// Length of the UTF-8 sequence starting at s[i] (1 for invalid lead or truncated sequences).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const unsigned char c = (unsigned char)s[i];
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (std::size_t k = 1; k < n; ++k) {
    if (((unsigned char)s[i + k] >> 6) != 0x2) return 1;
  }
  return n;
}

// Decodes one well-formed UTF-8 sequence (as produced by append_utf8).
uint32_t decode_utf8(std::string_view s, std::size_t i, std::size_t n) {
  const unsigned char c = (unsigned char)s[i];
  if (n == 1) return c;
  uint32_t cp = n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
  return cp;
}

std::vector<std::string> utf8_chars(std::string_view s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_length(s, i);
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// Pre-tokenizer regexes, as in the Hugging Face tokenizer.json files of each family.
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kDigits = R"(\p{N})";

}  // namespace

// A sequence of regex splits; each pass splits every piece of the previous pass into its matches
// and the gaps between them (Hugging Face's "Isolated" behaviour). Invalid UTF-8 never matches, so
// it survives as gap pieces and round-trips byte for byte.
class PreTokenizer {
 public:
  explicit PreTokenizer(const std::vector<const char*>& patterns) {
    for (const char* p : patterns) {
      int error = 0;
      PCRE2_SIZE offset = 0;
      pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p), PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
      if (!code) fail(ErrorCode::internal, "pre-tokenizer regex does not compile at offset " + std::to_string(offset));
      pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
      codes_.push_back(code);
    }
  }
  ~PreTokenizer() {
    for (pcre2_code* c : codes_) pcre2_code_free(c);
  }

  // Match data (where pcre2_match writes its offsets) belongs to the call, not the tokenizer: the
  // daemon encodes concurrent requests' prompts with one model's tokenizer from several threads,
  // and a shared block let one thread read another's match offsets (a substr past the end).
  std::vector<std::string_view> split(std::string_view text) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(pcre2_match_data_create(4, nullptr),
                                                                             &pcre2_match_data_free);
    if (!data) fail(ErrorCode::internal, "pre-tokenizer: out of memory for match data");
    std::vector<std::string_view> pieces{text};
    for (pcre2_code* code : codes_) {
      std::vector<std::string_view> next;
      for (std::string_view piece : pieces) split_one(code, piece, data.get(), next);
      pieces = std::move(next);
    }
    return pieces;
  }

 private:
  static void split_one(pcre2_code* code, std::string_view s, pcre2_match_data* data,
                        std::vector<std::string_view>& out) {
    std::size_t pos = 0, gap = 0;
    while (pos < s.size()) {
      const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, data, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
      std::size_t start = ov[0], end = ov[1];
      if (end == start) {  // an empty match: step over one character
        pos = start + utf8_length(s, start);
        continue;
      }
      if (start > gap) out.push_back(s.substr(gap, start - gap));
      out.push_back(s.substr(start, end - start));
      pos = gap = end;
    }
    if (gap < s.size()) out.push_back(s.substr(gap));
  }

  std::vector<pcre2_code*> codes_;  // read-only after construction: matching is safe from any thread
};

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;

Tokenizer::Tokenizer(TokenizerVocab vocab) : vocab_(std::move(vocab)) {
  const std::size_t n = vocab_.tokens.size();
  if (n == 0) fail(ErrorCode::bad_format, "tokenizer: the vocabulary is empty (tokenizer.ggml.tokens)");
  if (!vocab_.scores.empty() && vocab_.scores.size() != n) {
    fail(ErrorCode::bad_format,
         "tokenizer: " + std::to_string(vocab_.scores.size()) + " scores for " + std::to_string(n) + " tokens");
  }
  if (!vocab_.token_types.empty() && vocab_.token_types.size() != n) {
    fail(ErrorCode::bad_format, "tokenizer: " + std::to_string(vocab_.token_types.size()) + " token types for " +
                                    std::to_string(n) + " tokens");
  }
  for (auto [name, id] : {std::pair{"bos", vocab_.bos},
                          {"eos", vocab_.eos},
                          {"eot", vocab_.eot},
                          {"pad", vocab_.pad},
                          {"unk", vocab_.unk}}) {
    if (id < -1 || id >= int32_t(n))
      fail(ErrorCode::bad_format,
           std::string("tokenizer: ") + name + " id " + std::to_string(id) + " outside the vocabulary");
  }
  token_ids_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) token_ids_.emplace(vocab_.tokens[i], int32_t(i));  // first id wins for duplicates

  std::fill(std::begin(byte_tokens_), std::end(byte_tokens_), -1);
  if (vocab_.model == "gpt2") {
    merge_ranks_.reserve(vocab_.merges.size());
    for (std::size_t r = 0; r < vocab_.merges.size(); ++r) {
      const std::string& m = vocab_.merges[r];
      const std::size_t space = m.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == m.size() ||
          m.find(' ', space + 1) != std::string::npos) {
        fail(ErrorCode::bad_format, "tokenizer: merge " + std::to_string(r) + " ('" + m + "') is not 'left right'");
      }
      merge_ranks_.emplace(m, int32_t(r));
    }
    const std::string& pre = vocab_.pre;
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
      pre_ = std::make_unique<PreTokenizer>(std::vector<const char*>{kLlama3});
      ignore_merges_ = true;
    } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "megrez") {
      pre_ = std::make_unique<PreTokenizer>(std::vector<const char*>{kQwen2});
    } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") {
      pre_ = std::make_unique<PreTokenizer>(std::vector<const char*>{kDigits, kGpt2});
    } else if (pre == "gpt-2" || pre == "gpt2" || pre == "default" || pre.empty()) {
      pre_ = std::make_unique<PreTokenizer>(std::vector<const char*>{kGpt2});
    } else {
      fail(ErrorCode::unsupported,
           "tokenizer: pre-tokenizer '" + pre + "' is not supported (known: llama-bpe, qwen2, smollm, gpt2, default)");
    }
  } else if (vocab_.model == "llama") {
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& t = vocab_.tokens[i];
      if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t.back() == '>') {
        byte_tokens_[std::stoi(t.substr(3, 2), nullptr, 16)] = int32_t(i);
      }
    }
  } else {
    fail(ErrorCode::unsupported, "tokenizer: model '" + vocab_.model + "' is not supported (known: gpt2, llama)");
  }

  // Control and user-defined tokens are matched literally, longest first.
  std::vector<std::pair<std::string, int32_t>> specials;
  for (std::size_t i = 0; i < vocab_.token_types.size(); ++i) {
    const int32_t type = vocab_.token_types[i];
    if ((type == 3 || type == 4) && !vocab_.tokens[i].empty()) specials.emplace_back(vocab_.tokens[i], int32_t(i));
  }
  std::stable_sort(specials.begin(), specials.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (auto& [text, id] : specials) {
    specials_.push_back(text);
    special_ids_.push_back(id);
  }
}

int32_t Tokenizer::byte_token(unsigned char byte) const { return byte_tokens_[byte]; }

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  std::size_t start = 0, pos = 0;
  bool first = true;
  auto flush = [&](std::size_t end) {
    if (end > start) {
      if (vocab_.model == "llama") {
        spm_fragment(text.substr(start, end - start), first, out);
      } else {
        encode_fragment(text.substr(start, end - start), out);
      }
    }
    first = false;
  };
  while (parse_special && pos < text.size()) {
    bool matched = false;
    for (std::size_t s = 0; s < specials_.size(); ++s) {
      const std::string& sp = specials_[s];
      if (text.size() - pos >= sp.size() && text.compare(pos, sp.size(), sp) == 0) {
        flush(pos);
        out.push_back(special_ids_[s]);
        pos += sp.size();
        start = pos;
        matched = true;
        break;
      }
    }
    if (!matched) ++pos;
  }
  flush(text.size());
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

void Tokenizer::encode_fragment(std::string_view text, std::vector<int32_t>& out) const {
  const ByteAlphabet& alphabet = byte_alphabet();
  for (std::string_view piece : pre_->split(text)) {
    std::string mapped;
    mapped.reserve(piece.size() * 2);
    for (unsigned char b : piece) append_utf8(mapped, alphabet.byte_to_cp[b]);
    if (ignore_merges_) {
      auto it = token_ids_.find(mapped);
      if (it != token_ids_.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    bpe_piece(mapped, out);
  }
}

void Tokenizer::bpe_piece(const std::string& piece, std::vector<int32_t>& out) const {
  // Repeatedly merge the adjacent pair with the lowest rank (leftmost on ties).
  std::vector<std::string> symbols = utf8_chars(piece);
  std::string key;
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    std::size_t best = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      key.assign(symbols[i]).append(" ").append(symbols[i + 1]);
      auto it = merge_ranks_.find(key);
      if (it != merge_ranks_.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank == std::numeric_limits<int32_t>::max()) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + std::ptrdiff_t(best) + 1);
  }
  for (const std::string& s : symbols) {
    auto it = token_ids_.find(s);
    if (it != token_ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    // Not a token: fall back to its single characters. A byte whose character has no token is
    // dropped, as llama.cpp does: some byte-level vocabularies leave out bytes that never occur in
    // UTF-8 text (SmolLM2 lacks 21), and mapping them to unk would put a control token such as
    // <|endoftext|> into the text.
    for (const std::string& c : utf8_chars(s)) {
      auto ct = token_ids_.find(c);
      if (ct != token_ids_.end()) out.push_back(ct->second);
    }
  }
}

void Tokenizer::spm_fragment(std::string_view text, bool first, std::vector<int32_t>& out) const {
  // SentencePiece BPE: spaces become U+2581, one is prefixed to the text, and the adjacent pair whose
  // concatenation is the highest-scoring token is merged first.
  static const std::string kSpace = "\xE2\x96\x81";
  std::string s = first ? kSpace : std::string();
  for (char c : text) {
    if (c == ' ') {
      s += kSpace;
    } else {
      s += c;
    }
  }
  std::vector<std::string> symbols = utf8_chars(s);
  while (symbols.size() > 1) {
    float best_score = -std::numeric_limits<float>::infinity();
    std::size_t best = symbols.size();
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = token_ids_.find(symbols[i] + symbols[i + 1]);
      if (it == token_ids_.end()) continue;
      const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[std::size_t(it->second)];
      if (score > best_score) {
        best_score = score;
        best = i;
      }
    }
    if (best == symbols.size()) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + std::ptrdiff_t(best) + 1);
  }
  for (const std::string& sym : symbols) {
    auto it = token_ids_.find(sym);
    if (it != token_ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    for (unsigned char b : sym) {
      const int32_t t = byte_token(b);
      if (t >= 0) {
        out.push_back(t);
      } else if (vocab_.unk >= 0) {
        out.push_back(vocab_.unk);
      } else {
        fail(ErrorCode::bad_format, "tokenizer: no byte-fallback token <0x..> and no unk token for an unknown symbol");
      }
    }
  }
}

std::string Tokenizer::token_text(int32_t token) const {
  if (token < 0 || token >= vocab_size()) {
    fail(ErrorCode::invalid_argument,
         "token " + std::to_string(token) + " outside the vocabulary (size " + std::to_string(vocab_size()) + ")");
  }
  const std::string& t = vocab_.tokens[std::size_t(token)];
  const int32_t type = vocab_.token_types.empty() ? 1 : vocab_.token_types[std::size_t(token)];
  if (type == 3 || type == 4) return t;  // control / user-defined: literal text
  if (vocab_.model == "llama") {
    if (type == 6 && t.size() == 6) return std::string(1, char(std::stoi(t.substr(3, 2), nullptr, 16)));
    std::string out;
    for (std::size_t i = 0; i < t.size();) {
      if (t.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 3;
      } else {
        out += t[i++];
      }
    }
    return out;
  }
  const ByteAlphabet& alphabet = byte_alphabet();
  std::string out;
  for (std::size_t i = 0; i < t.size();) {
    const std::size_t n = utf8_length(t, i);
    const uint32_t cp = decode_utf8(t, i, n);
    auto it = alphabet.cp_to_byte.find(cp);
    if (it != alphabet.cp_to_byte.end()) {
      out += char(it->second);
    } else {
      out.append(t, i, n);  // not a byte character: keep the text as is
    }
    i += n;
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> tokens) const {
  std::string out;
  for (int32_t t : tokens) out += token_text(t);
  if (vocab_.model == "llama" && !out.empty() && out[0] == ' ' && !tokens.empty()) {
    const int32_t type = vocab_.token_types.empty() ? 1 : vocab_.token_types[std::size_t(tokens[0])];
    if (type == 1) out.erase(0, 1);  // the space prefix SentencePiece added when encoding
  }
  return out;
}

}  // namespace decodelab
