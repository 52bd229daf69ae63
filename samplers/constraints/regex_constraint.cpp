// regex(pattern=...): the decoded text must match the whole pattern (anchored at both ends).
// A prefix is viable when PCRE2 reports a hard partial match (the subject ran out while the match
// was still alive) or a full match: that is exactly "some continuation may match".
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab {
namespace {

class CompiledPattern {
 public:
  explicit CompiledPattern(const std::string& pattern) : pattern_(pattern) {
    // Validated alone first (so errors point into the user's pattern), then wrapped so the match
    // must end at the end of the text: PCRE2 refuses ENDANCHORED together with partial matching,
    // while \z under PCRE2_PARTIAL_HARD reports "partial" at the end of the subject, as needed.
    code_ = compile(pattern, pattern);
    pcre2_code_free(code_);
    code_ = compile("(?:" + pattern + ")\\z", pattern);
    // JIT makes masking over a 150k vocabulary several times faster; where the JIT is unavailable
    // pcre2_match silently uses the interpreter, with the same answers.
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  static pcre2_code* compile(const std::string& source, const std::string& pattern) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* compiled = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                         PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &offset, nullptr);
    if (!compiled) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(code, message, sizeof message);
      fail(ErrorCode::invalid_argument, "regex constraint: pattern '" + pattern + "' does not compile at offset " +
                                            std::to_string(offset) + ": " + reinterpret_cast<const char*>(message));
    }
    return compiled;
  }
  ~CompiledPattern() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  CompiledPattern(const CompiledPattern&) = delete;
  CompiledPattern& operator=(const CompiledPattern&) = delete;

  // partial: may `text` be extended into a full match? Otherwise: does `text` match fully?
  bool match(std::string_view text, bool partial) const {
    const uint32_t options = PCRE2_ANCHORED | (partial ? PCRE2_PARTIAL_HARD : 0);
    const int rc =
        pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, options, data_, nullptr);
    if (rc >= 0) return true;
    if (rc == PCRE2_ERROR_PARTIAL) return partial;
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    fail(ErrorCode::invalid_argument,
         "regex constraint: matching '" + pattern_ + "' failed: " + reinterpret_cast<const char*>(message));
  }
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;  // matching is single-threaded per constraint family
};

class RegexConstraint final : public Constraint {
 public:
  explicit RegexConstraint(const std::string& pattern) : pattern_(std::make_shared<CompiledPattern>(pattern)) {}
  std::string name() const override { return "regex(pattern=" + pattern_->pattern() + ")"; }
  bool is_complete() const override { return pattern_->match(text(), false); }
  bool viable_text(std::string_view t) const override { return pattern_->match(t, true); }
  std::unique_ptr<Constraint> clone() const override { return std::make_unique<RegexConstraint>(*this); }

 protected:
  bool viable_after(std::string_view piece) const override {
    scratch_.assign(text());
    scratch_.append(piece);
    return pattern_->match(scratch_, true);
  }
  void append(std::string_view) override {}

 private:
  std::shared_ptr<const CompiledPattern> pattern_;
  mutable std::string scratch_;
};

const RegisterConstraint reg_regex({
    .name = "regex",
    .doc = "The decoded text matches the whole regular expression (PCRE2 syntax, UTF-8); prefixes are checked by "
           "partial matching.",
    .params = {ParamSpec::string("pattern", "", "PCRE2 regular expression the whole text must match")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Constraint> {
      if (p.get_string("pattern").empty())
        fail(ErrorCode::invalid_argument, "regex constraint: parameter 'pattern' is empty");
      return std::make_unique<RegexConstraint>(p.get_string("pattern"));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_constraints_regex_constraint)
