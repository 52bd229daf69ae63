#include "decodelab/token_stream.hpp"

#include <string>

#include "decodelab/error.hpp"

namespace decodelab {

const char* to_string(TokenOrigin origin) {
  switch (origin) {
    case TokenOrigin::prompt: return "prompt";
    case TokenOrigin::sampled: return "sampled";
    case TokenOrigin::draft_accepted: return "draft_accepted";
    case TokenOrigin::resampled: return "resampled";
    case TokenOrigin::bonus: return "bonus";
    case TokenOrigin::forced: return "forced";
  }
  return "unknown";
}

TokenStream::TokenStream(std::span<const TokenId> prompt) {
  std::vector<TokenRecord>& tail = records_.tail();
  tail.reserve(prompt.size());
  for (TokenId id : prompt) tail.push_back(TokenRecord{id, 0.0f, TokenOrigin::prompt, 0});
  prompt_size_ = prompt.size();
}

const TokenRecord& TokenStream::at(std::size_t index) const {
  if (index >= size()) {
    fail(ErrorCode::invalid_argument,
         "TokenStream::at(" + std::to_string(index) + ") past the end (size " + std::to_string(size()) + ")");
  }
  return records_.at(index);
}

TokenId TokenStream::back() const {
  if (empty()) fail(ErrorCode::invalid_argument, "TokenStream::back() on an empty stream");
  return at(size() - 1).id;
}

std::vector<TokenRecord> TokenStream::records() const { return records_.to_vector(); }

std::vector<TokenId> TokenStream::tokens() const {
  std::vector<TokenId> out;
  out.reserve(size());
  for (const TokenRecord& r : records()) out.push_back(r.id);
  return out;
}

std::vector<TokenId> TokenStream::generated_tokens() const {
  std::vector<TokenId> all = tokens();
  return std::vector<TokenId>(all.begin() + std::ptrdiff_t(prompt_size_), all.end());
}

double TokenStream::generated_logprob() const {
  double sum = 0.0;
  for (std::size_t i = prompt_size_; i < size(); ++i) sum += at(i).logprob;
  return sum;
}

void TokenStream::append(const TokenRecord& record) {
  records_.tail().push_back(record);
  if (sink_) sink_->on_append(size() - 1, record);
}

void TokenStream::truncate(std::size_t new_size) {
  if (new_size > size()) {
    fail(ErrorCode::invalid_argument, "TokenStream::truncate(" + std::to_string(new_size) + ") beyond the end (size " +
                                          std::to_string(size()) + ")");
  }
  if (new_size < prompt_size_) {
    fail(ErrorCode::invalid_argument, "TokenStream::truncate(" + std::to_string(new_size) +
                                          ") would cut into the prompt (" + std::to_string(prompt_size_) + " tokens)");
  }
  if (new_size == size()) return;
  records_.truncate(new_size);
  if (sink_) sink_->on_truncate(new_size);
}

TokenStream TokenStream::fork() const {
  TokenStream branch;
  branch.records_ = records_.fork();
  branch.prompt_size_ = prompt_size_;
  return branch;
}

}  // namespace decodelab
