#pragma once
// Constraint: an incremental test on the text a sequence decodes to. A Constraint object *is* the
// state of one sequence: extend() commits a token, allows() asks whether the sequence extended by
// one more token can still be completed into something the constraint accepts, is_complete() says
// whether the text so far is already accepted. clone() forks the state (one per particle).
//
//   auto c = make_constraint("regex(pattern=[0-9]+(\\.[0-9]+)?)", model);
//   if (c->allows(token)) c->extend(token);
//   c->is_complete();
//
// The end-of-sequence token (the model's eos) is allowed exactly when the text is complete; every
// other token is judged by its text (LanguageModel::token_text). Every allows() call counts one
// evaluation on a counter that clones share, so decoders can report how many checks they paid for.
//
// Constraint specs are "name(param=value,...)": regex(pattern=...), json, stop(text=...,max_chars=...).
// For regex the text after "pattern=" up to the final ')' is taken verbatim, so patterns may contain
// commas and parentheses; other values (stop's text) end at a comma outside parentheses (parse_spec).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "decodelab/language_model.hpp"
#include "decodelab/registry.hpp"

namespace decodelab {

// The decoded text of every token of a vocabulary, shared by all constraints on one model.
struct Vocabulary {
  std::vector<std::string> texts;
  TokenId eos = -1;
  static std::shared_ptr<const Vocabulary> of(const LanguageModel& model);
};

class Constraint {
 public:
  virtual ~Constraint() = default;
  virtual std::string name() const = 0;

  // Sets the vocabulary tokens are decoded with; make_constraint() does it.
  void bind(std::shared_ptr<const Vocabulary> vocabulary) { vocabulary_ = std::move(vocabulary); }
  const Vocabulary& vocabulary() const;

  // Can the current text followed by `token` still be completed? Counts one evaluation.
  bool allows(TokenId token);
  // Appends `token`'s text. Extending by a token allows() rejected is an error (invalid_argument).
  void extend(TokenId token);
  // Is the text so far accepted as a whole?
  virtual bool is_complete() const = 0;
  // Whether `text` (from the empty state, not the current one) can be completed: the from-scratch
  // answer that the incremental state must agree with.
  virtual bool viable_text(std::string_view text) const = 0;

  const std::string& text() const { return text_; }
  int64_t evaluations() const { return *evaluations_; }
  void reset_evaluations() { *evaluations_ = 0; }
  // A fork of this state; the clone shares the evaluation counter.
  virtual std::unique_ptr<Constraint> clone() const = 0;

 protected:
  Constraint() = default;
  Constraint(const Constraint&) = default;
  // Whether the current text followed by `piece` can still be completed.
  virtual bool viable_after(std::string_view piece) const = 0;
  // Commits `piece` (already known to be viable).
  virtual void append(std::string_view piece) = 0;

 private:
  std::shared_ptr<const Vocabulary> vocabulary_;
  std::shared_ptr<int64_t> evaluations_ = std::make_shared<int64_t>(0);
  std::string text_;
  bool ended_ = false;  // eos was appended: nothing may follow
};

using ConstraintRegistry = Registry<Constraint>;
template <>
ConstraintRegistry& ConstraintRegistry::instance();

struct RegisterConstraint {
  explicit RegisterConstraint(RegistryEntry<Constraint> entry) { ConstraintRegistry::instance().add(std::move(entry)); }
};

// Parses a constraint spec (see above) and binds it to `model`'s vocabulary. Throws
// Error(not_found) for an unknown name and Error(invalid_argument / bad_format) for bad parameters.
std::unique_ptr<Constraint> make_constraint(std::string_view spec, const LanguageModel& model);
// Same, with a vocabulary computed once and shared (many constraints on one model).
std::unique_ptr<Constraint> make_constraint(std::string_view spec, std::shared_ptr<const Vocabulary> vocabulary);

// The constraint parameter every constrained decoder declares ("" = unconstrained where allowed).
ParamSpec constraint_param_spec(bool required);

}  // namespace decodelab
