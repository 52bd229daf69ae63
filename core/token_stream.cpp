#include "core/token_stream.hpp"

#include <string>

#include "core/error.hpp"

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
  tail_.reserve(prompt.size());
  for (TokenId id : prompt) tail_.push_back(TokenRecord{id, 0.0f, TokenOrigin::prompt, 0});
  prompt_size_ = prompt.size();
}

const TokenRecord& TokenStream::at(std::size_t index) const {
  if (index >= size()) {
    fail(ErrorCode::invalid_argument,
         "TokenStream::at(" + std::to_string(index) + ") past the end (size " + std::to_string(size()) + ")");
  }
  if (index >= base_size_) return tail_[index - base_size_];
  const Segment* seg = base_.get();
  while (seg->start > index) seg = seg->parent.get();
  return seg->records[index - seg->start];
}

TokenId TokenStream::back() const {
  if (empty()) fail(ErrorCode::invalid_argument, "TokenStream::back() on an empty stream");
  return at(size() - 1).id;
}

std::vector<TokenRecord> TokenStream::records() const {
  std::vector<TokenRecord> out(size());
  std::size_t end = base_size_;
  for (const Segment* seg = base_.get(); seg != nullptr; seg = seg->parent.get()) {
    for (std::size_t i = seg->start; i < end; ++i) out[i] = seg->records[i - seg->start];
    end = seg->start;
  }
  for (std::size_t i = 0; i < tail_.size(); ++i) out[base_size_ + i] = tail_[i];
  return out;
}

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
  tail_.push_back(record);
  if (sink_) sink_->on_append(size() - 1, record);
}

void TokenStream::truncate(std::size_t new_size) {
  if (new_size > size()) {
    fail(ErrorCode::invalid_argument, "TokenStream::truncate(" + std::to_string(new_size) +
                                          ") beyond the end (size " + std::to_string(size()) + ")");
  }
  if (new_size < prompt_size_) {
    fail(ErrorCode::invalid_argument, "TokenStream::truncate(" + std::to_string(new_size) +
                                          ") would cut into the prompt (" + std::to_string(prompt_size_) + " tokens)");
  }
  if (new_size == size()) return;
  if (new_size >= base_size_) {
    tail_.resize(new_size - base_size_);
  } else {
    // The cut falls inside shared segments: drop whole segments, keep a prefix of one.
    tail_.clear();
    while (base_ && base_->start >= new_size) base_ = base_->parent;
    base_size_ = new_size;
  }
  if (sink_) sink_->on_truncate(new_size);
}

void TokenStream::freeze() const {
  if (tail_.empty()) return;
  auto seg = std::make_shared<Segment>();
  seg->parent = base_;
  seg->start = base_size_;
  seg->records = std::move(tail_);
  tail_.clear();
  base_size_ += seg->records.size();
  base_ = std::move(seg);
}

TokenStream TokenStream::fork() const {
  freeze();
  TokenStream branch;
  branch.base_ = base_;
  branch.base_size_ = base_size_;
  branch.prompt_size_ = prompt_size_;
  return branch;
}

}  // namespace decodelab
