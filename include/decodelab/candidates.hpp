#pragma once
// The token candidates a sampler chain works on: (token, logit, probability) triples in one
// contiguous array, laid out exactly as llama.cpp's llama_token_data, so an engine can hand its
// own array to a chain and have it processed in place, nothing copied per token:
//
//   Candidates c = Candidates::from_logits(logits);    // decodelab's own array, all tokens
//   Candidates c = Candidates::borrow(engine_array);   // the engine's array, borrowed
//   chain.apply(c);                                    // truncate, rescale, maybe select
//
// A chain only ever shrinks the set it is given (truncation) or rewrites entries in place
// (temperature, softmax, sorting), so a borrowed array never needs to grow; if something tried,
// it fails with an Error rather than writing past the caller's array.

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <vector>

#include "decodelab/distribution.hpp"

namespace decodelab {

struct Candidate {
  TokenId id = 0;
  float logit = 0.0f;
  float p = 0.0f;  // valid after softmax()
};
static_assert(sizeof(Candidate) == 12 && alignof(Candidate) == 4, "Candidate must stay llama_token_data's layout");

// A vector-like array of candidates that either owns its storage or borrows a caller's array of
// fixed capacity. Copies always own (a copy never aliases the caller's memory); assigning to a
// borrowed array writes the new contents into the borrowed storage.
class CandidateArray {
 public:
  CandidateArray() = default;
  CandidateArray(std::initializer_list<Candidate> items) : owned_(items) {}
  explicit CandidateArray(std::vector<Candidate> items) : owned_(std::move(items)) {}
  // Borrows storage[0, storage.size()): the array starts full, and may shrink but not grow.
  static CandidateArray borrow(std::span<Candidate> storage);

  CandidateArray(const CandidateArray& other) : owned_(other.begin(), other.end()) {}
  CandidateArray(CandidateArray&& other) noexcept;
  CandidateArray& operator=(const CandidateArray& other);
  CandidateArray& operator=(CandidateArray&& other);
  CandidateArray& operator=(std::vector<Candidate> items);
  CandidateArray& operator=(std::initializer_list<Candidate> items);

  bool borrowed() const { return borrowed_ != nullptr; }
  std::size_t size() const { return borrowed_ ? size_ : owned_.size(); }
  std::size_t capacity() const { return borrowed_ ? capacity_ : owned_.capacity(); }
  bool empty() const { return size() == 0; }
  Candidate* data() { return borrowed_ ? borrowed_ : owned_.data(); }
  const Candidate* data() const { return borrowed_ ? borrowed_ : owned_.data(); }
  Candidate* begin() { return data(); }
  Candidate* end() { return data() + size(); }
  const Candidate* begin() const { return data(); }
  const Candidate* end() const { return data() + size(); }
  Candidate& operator[](std::size_t i) { return data()[i]; }
  const Candidate& operator[](std::size_t i) const { return data()[i]; }
  Candidate& front() { return data()[0]; }
  Candidate& back() { return data()[size() - 1]; }

  // Growing a borrowed array past its capacity throws Error(invalid_argument).
  void resize(std::size_t n);
  void reserve(std::size_t n);
  void push_back(const Candidate& c);
  void clear() { resize(0); }

  bool operator==(const CandidateArray& other) const;

 private:
  void assign(const Candidate* first, std::size_t n);

  std::vector<Candidate> owned_;
  Candidate* borrowed_ = nullptr;  // non-null: the caller's array
  std::size_t size_ = 0;           // borrowed only
  std::size_t capacity_ = 0;       // borrowed only
};

// Removes the candidates `pred` holds for, keeping the others' order (std::erase_if's contract).
template <class Pred>
std::size_t erase_if(CandidateArray& array, Pred pred) {
  Candidate* kept_end = std::remove_if(array.begin(), array.end(), pred);
  const std::size_t removed = std::size_t(array.end() - kept_end);
  array.resize(array.size() - removed);
  return removed;
}

struct Candidates {
  CandidateArray data;
  bool sorted = false;            // sorted by logit, descending, ties by id ascending
  std::size_t sorted_prefix = 0;  // data[0, sorted_prefix) are the largest, in sorted order
  int selected = -1;              // index into data of the chosen token (terminal samplers), -1 = none

  // Every token of a dense logits array (token id = index); -inf entries are left out.
  // Throws Error(numeric) for a NaN or +inf logit and when every logit is -inf.
  static Candidates from_logits(std::span<const float> logits);
  // The caller's candidates, processed in place: ids and logits as the caller filled them, in any
  // order (a subset of the vocabulary is fine). -inf entries are dropped, as from_logits drops
  // them. Errors as from_logits, plus Error(invalid_argument) for a negative id. After a chain
  // ran, the kept candidates are storage[0, data.size()), in the chain's order; what lies past
  // data.size() is unspecified.
  static Candidates borrow(std::span<Candidate> storage);

  void sort();  // no-op when already sorted
  // Makes data[0, n) the n largest candidates in sorted order (the rest in any order): O(size + n log n),
  // which is what top-k and top-p need on a 150k vocabulary. Returns min(n, size).
  std::size_t sort_top(std::size_t n);
  void softmax();  // fills p from the kept logits
  // The distribution over the full vocabulary: softmax of the kept logits, 0 elsewhere; a point
  // mass on the selected token when a terminal sampler (greedy, dist) has selected one.
  std::vector<float> dense_probs(int vocab_size) const;
  TokenId selected_token() const;  // throws when nothing is selected
};

}  // namespace decodelab
