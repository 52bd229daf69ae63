#pragma once
// TokenStream: the sequence a decoder grows. It holds the prompt and the generated tokens, each with
// its log-probability under the target and where it came from. Streams fork cheaply: branches
// share their common prefix (immutable segments, include/decodelab/segment_chain.hpp), so a decoder can keep N
// particles or trials alive without copying the prompt. A sink sees every append and rollback as
// it happens, which is how the daemon streams tokens out while decoding runs.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "decodelab/distribution.hpp"
#include "decodelab/segment_chain.hpp"

namespace decodelab {

// How a token entered the stream.
enum class TokenOrigin : uint8_t {
  prompt,          // part of the input
  sampled,         // drawn from the (processed) target distribution
  draft_accepted,  // proposed by a drafter and accepted by verification
  resampled,       // drawn from a residual after a rejection
  bonus,           // the extra target token after a fully accepted draft
  forced,          // appended by a rule (constraint, stop handling), not sampled
};
const char* to_string(TokenOrigin origin);

struct TokenRecord {
  TokenId id = 0;
  float logprob = 0.0f;  // log p(token | prefix) under the target model's raw (unprocessed) distribution; 0 for prompt
  TokenOrigin origin = TokenOrigin::sampled;
  uint32_t step = 0;  // the decoder step (target call) that produced it
};

// Receives the stream's changes as they happen. Called on the decoding thread.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // `record` was appended at position `index` (0-based, counting the prompt).
  virtual void on_append(std::size_t index, const TokenRecord& record) = 0;
  // The stream was cut back to `new_size` tokens.
  virtual void on_truncate(std::size_t /*new_size*/) {}
};

// A sink from a lambda, for tests and small tools.
class CallbackSink final : public TokenSink {
 public:
  using AppendFn = std::function<void(std::size_t, const TokenRecord&)>;
  explicit CallbackSink(AppendFn fn) : fn_(std::move(fn)) {}
  void on_append(std::size_t index, const TokenRecord& record) override { fn_(index, record); }

 private:
  AppendFn fn_;
};

class TokenStream {
 public:
  TokenStream() = default;
  explicit TokenStream(std::span<const TokenId> prompt);

  std::size_t size() const { return records_.size(); }
  std::size_t prompt_size() const { return prompt_size_; }
  std::size_t generated_size() const { return size() - prompt_size_; }
  bool empty() const { return size() == 0; }

  const TokenRecord& at(std::size_t index) const;  // throws on out-of-range
  TokenId token(std::size_t index) const { return at(index).id; }
  TokenId back() const;

  // All token ids / only the generated ones, materialized.
  std::vector<TokenId> tokens() const;
  std::vector<TokenId> generated_tokens() const;
  std::vector<TokenRecord> records() const;
  // Sum of the generated tokens' logprobs.
  double generated_logprob() const;

  void append(const TokenRecord& record);
  void append(TokenId id, float logprob, TokenOrigin origin, uint32_t step = 0) {
    append(TokenRecord{id, logprob, origin, step});
  }
  // Cuts the stream back to `new_size` tokens (rollback). Cutting into the prompt is an error.
  void truncate(std::size_t new_size);

  // A branch sharing this stream's current contents. The branch has no sink; the two evolve
  // independently afterwards.
  TokenStream fork() const;

  void set_sink(std::shared_ptr<TokenSink> sink) { sink_ = std::move(sink); }
  const std::shared_ptr<TokenSink>& sink() const { return sink_; }

 private:
  // Mutable so that a const fork() can freeze the tail into a shared segment (which changes no
  // record, only where they are kept).
  mutable SegmentChain<std::vector<TokenRecord>> records_;
  std::size_t prompt_size_ = 0;
  std::shared_ptr<TokenSink> sink_;
};

}  // namespace decodelab
