// json: the decoded text is one well-formed JSON value (RFC 8259 grammar, optional surrounding
// whitespace). Every JSON prefix that the recognizer has not rejected can be completed (close the
// open string, finish the literal or number, close the containers), so "viable" = "not dead".
#include "decodelab/builtins.hpp"
#include "samplers/constraints/constraint.hpp"
#include "samplers/constraints/json_recognizer.hpp"

namespace decodelab {
namespace {

class JsonConstraint final : public Constraint {
 public:
  std::string name() const override { return "json"; }
  bool is_complete() const override { return state_.complete(); }
  bool viable_text(std::string_view t) const override {
    JsonRecognizer fresh;
    return fresh.feed(t);
  }
  std::unique_ptr<Constraint> clone() const override { return std::make_unique<JsonConstraint>(*this); }

 protected:
  bool viable_after(std::string_view piece) const override {
    JsonRecognizer trial = state_;
    return trial.feed(piece);
  }
  void append(std::string_view piece) override { state_.feed(piece); }

 private:
  JsonRecognizer state_;
};

const RegisterConstraint reg_json({
    .name = "json",
    .doc = "The decoded text is one well-formed JSON value (RFC 8259), surrounding whitespace allowed.",
    .params = {},
    .roles = {},
    .make = [](const Params&) -> std::unique_ptr<Constraint> { return std::make_unique<JsonConstraint>(); },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_constraints_json_constraint)
