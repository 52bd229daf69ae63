#include <cstring>
#include <string>

#include "decodelab/candidates.hpp"
#include "decodelab/error.hpp"

namespace decodelab {

CandidateArray CandidateArray::borrow(std::span<Candidate> storage) {
  CandidateArray a;
  // An empty span may have a null data(): point at something non-null so the array reads as
  // borrowed (of capacity 0) rather than as an empty owned vector.
  static Candidate nothing;
  a.borrowed_ = storage.data() ? storage.data() : &nothing;
  a.size_ = a.capacity_ = storage.size();
  return a;
}

CandidateArray::CandidateArray(CandidateArray&& other) noexcept
    : owned_(std::move(other.owned_)), borrowed_(other.borrowed_), size_(other.size_), capacity_(other.capacity_) {
  other.owned_.clear();
  other.borrowed_ = nullptr;
  other.size_ = other.capacity_ = 0;
}

CandidateArray& CandidateArray::operator=(const CandidateArray& other) {
  if (this != &other) assign(other.data(), other.size());
  return *this;
}

CandidateArray& CandidateArray::operator=(CandidateArray&& other) {
  if (this == &other) return *this;
  if (borrowed_) {
    // The caller's array stays ours: the new contents are written into it.
    assign(other.data(), other.size());
  } else {
    owned_ = std::move(other.owned_);
    borrowed_ = other.borrowed_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.owned_.clear();
    other.borrowed_ = nullptr;
    other.size_ = other.capacity_ = 0;
  }
  return *this;
}

CandidateArray& CandidateArray::operator=(std::vector<Candidate> items) {
  if (borrowed_) {
    assign(items.data(), items.size());
  } else {
    owned_ = std::move(items);
  }
  return *this;
}

CandidateArray& CandidateArray::operator=(std::initializer_list<Candidate> items) {
  assign(items.begin(), items.size());
  return *this;
}

void CandidateArray::assign(const Candidate* first, std::size_t n) {
  if (!borrowed_) {
    owned_.assign(first, first + n);
    return;
  }
  if (n > capacity_)
    fail(ErrorCode::invalid_argument,
         "candidates: a borrowed array of " + std::to_string(capacity_) + " entries cannot hold " + std::to_string(n));
  // memmove: `first` may point into the borrowed array itself.
  if (n) std::memmove(static_cast<void*>(borrowed_), first, n * sizeof(Candidate));
  size_ = n;
}

void CandidateArray::resize(std::size_t n) {
  if (!borrowed_) {
    owned_.resize(n);
    return;
  }
  if (n > capacity_)
    fail(ErrorCode::invalid_argument, "candidates: a borrowed array of " + std::to_string(capacity_) +
                                          " entries cannot grow to " + std::to_string(n));
  for (std::size_t i = size_; i < n; ++i) borrowed_[i] = Candidate{};
  size_ = n;
}

void CandidateArray::reserve(std::size_t n) {
  if (!borrowed_) {
    owned_.reserve(n);
  } else if (n > capacity_) {
    fail(ErrorCode::invalid_argument, "candidates: a borrowed array of " + std::to_string(capacity_) +
                                          " entries cannot reserve " + std::to_string(n));
  }
}

void CandidateArray::push_back(const Candidate& c) {
  if (!borrowed_) {
    owned_.push_back(c);
    return;
  }
  resize(size_ + 1);
  borrowed_[size_ - 1] = c;
}

bool CandidateArray::operator==(const CandidateArray& other) const {
  if (size() != other.size()) return false;
  for (std::size_t i = 0; i < size(); ++i) {
    const Candidate &a = (*this)[i], &b = other[i];
    if (a.id != b.id || a.logit != b.logit || a.p != b.p) return false;
  }
  return true;
}

}  // namespace decodelab
