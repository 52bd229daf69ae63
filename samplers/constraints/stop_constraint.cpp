// stop(text=S,max_chars=n): generation ends at the first occurrence of S (only eos may follow it),
// and the text never grows beyond n characters. Complete when the text ends with S (or, without S,
// always). With max_chars = 0 there is no length limit.
#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab {
namespace {

class StopConstraint final : public Constraint {
 public:
  StopConstraint(std::string stop, std::size_t max_chars) : stop_(std::move(stop)), max_chars_(max_chars) {}
  std::string name() const override { return "stop(text=" + stop_ + ",max_chars=" + std::to_string(max_chars_) + ")"; }
  bool is_complete() const override { return stop_.empty() || text().ends_with(stop_); }
  bool viable_text(std::string_view t) const override {
    if (max_chars_ && t.size() > max_chars_) return false;
    if (stop_.empty()) return true;
    const std::size_t at = t.find(stop_);
    if (at != std::string_view::npos) return at + stop_.size() == t.size();
    // Without the stop text yet, it must still fit: some suffix of t may begin it.
    return !max_chars_ || t.size() + stop_.size() - longest_stop_prefix_suffix(t) <= max_chars_;
  }
  std::unique_ptr<Constraint> clone() const override { return std::make_unique<StopConstraint>(*this); }

 protected:
  bool viable_after(std::string_view piece) const override {
    scratch_.assign(text());
    scratch_.append(piece);
    return viable_text(scratch_);
  }
  void append(std::string_view) override {}

 private:
  // Longest k such that the last k characters of t are the first k of the stop text.
  std::size_t longest_stop_prefix_suffix(std::string_view t) const {
    for (std::size_t k = std::min(t.size(), stop_.size()); k > 0; --k)
      if (t.substr(t.size() - k) == std::string_view(stop_).substr(0, k)) return k;
    return 0;
  }
  std::string stop_;
  std::size_t max_chars_;
  mutable std::string scratch_;
};

const RegisterConstraint reg_stop({
    .name = "stop",
    .doc = "Ends the text at the first occurrence of a stop string (only eos may follow) and caps its length in "
           "characters.",
    .params = {ParamSpec::string("text", "", "stop string (empty: none)"),
               ParamSpec::integer("max_chars", 0, 0, 1e9, "maximum text length in bytes (0: unlimited)")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Constraint> {
      if (p.get_string("text").empty() && p.get_int("max_chars") == 0)
        fail(ErrorCode::invalid_argument, "stop constraint: give 'text' or 'max_chars'");
      return std::make_unique<StopConstraint>(p.get_string("text"), std::size_t(p.get_int("max_chars")));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_constraints_stop_constraint)
