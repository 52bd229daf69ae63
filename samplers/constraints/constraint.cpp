#include "samplers/constraints/constraint.hpp"

#include "decodelab/error.hpp"

namespace decodelab {

template <>
ConstraintRegistry& ConstraintRegistry::instance() {
  static ConstraintRegistry registry("constraint");
  return registry;
}

std::shared_ptr<const Vocabulary> Vocabulary::of(const LanguageModel& model) {
  auto v = std::make_shared<Vocabulary>();
  v->texts.reserve(std::size_t(model.vocab_size()));
  for (TokenId t = 0; t < model.vocab_size(); ++t) v->texts.push_back(model.token_text(t));
  v->eos = model.info().eos;
  return v;
}

const Vocabulary& Constraint::vocabulary() const {
  if (!vocabulary_) fail(ErrorCode::internal, "constraint '" + name() + "' used before bind()");
  return *vocabulary_;
}

bool Constraint::allows(TokenId token) {
  const Vocabulary& v = vocabulary();
  if (token < 0 || std::size_t(token) >= v.texts.size())
    fail(ErrorCode::invalid_argument,
         "constraint '" + name() + "': token " + std::to_string(token) + " outside the vocabulary");
  *evaluations_ += 1;
  if (ended_) return false;
  if (token == v.eos) return is_complete();
  return viable_after(v.texts[std::size_t(token)]);
}

void Constraint::extend(TokenId token) {
  const Vocabulary& v = vocabulary();
  if (token < 0 || std::size_t(token) >= v.texts.size())
    fail(ErrorCode::invalid_argument,
         "constraint '" + name() + "': token " + std::to_string(token) + " outside the vocabulary");
  const bool ok = ended_ ? false : token == v.eos ? is_complete() : viable_after(v.texts[std::size_t(token)]);
  if (!ok)
    fail(ErrorCode::invalid_argument,
         "constraint '" + name() + "': token " + std::to_string(token) + " cannot follow text \"" + text_ + "\"");
  if (token == v.eos) {
    ended_ = true;
    return;
  }
  const std::string& piece = v.texts[std::size_t(token)];
  append(piece);
  text_ += piece;
}

namespace {

// Constraints whose only parameter is free text: the body after "<param>=" is taken verbatim.
std::string_view verbatim_param(std::string_view name) {
  if (name == "regex") return "pattern";
  return {};
}

}  // namespace

std::unique_ptr<Constraint> make_constraint(std::string_view spec, std::shared_ptr<const Vocabulary> vocabulary) {
  std::string_view s = spec;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) fail(ErrorCode::invalid_argument, "empty constraint spec");
  const std::size_t open = s.find('(');
  std::unique_ptr<Constraint> c;
  const std::string name(s.substr(0, open));
  const std::string_view raw = verbatim_param(name);
  if (open != std::string_view::npos && !raw.empty()) {
    if (s.back() != ')') fail(ErrorCode::bad_format, "constraint spec '" + std::string(spec) + "': missing ')'");
    std::string_view body = s.substr(open + 1, s.size() - open - 2);
    const std::string key = std::string(raw) + "=";
    if (body.substr(0, key.size()) != key)
      fail(ErrorCode::bad_format, "constraint spec '" + std::string(spec) + "': expected " + name + "(" + key + "...)");
    ParamMap params;
    params[std::string(raw)] = std::string(body.substr(key.size()));
    c = ConstraintRegistry::instance().create(name, params);
  } else {
    auto [parsed_name, params] = parse_spec(s);
    c = ConstraintRegistry::instance().create(parsed_name, params);
  }
  c->bind(std::move(vocabulary));
  return c;
}

std::unique_ptr<Constraint> make_constraint(std::string_view spec, const LanguageModel& model) {
  return make_constraint(spec, Vocabulary::of(model));
}

ParamSpec constraint_param_spec(bool required) {
  return ParamSpec::string("constraint", "",
                           std::string("constraint spec: regex(pattern=...), json, stop(text=...,max_chars=...)") +
                               (required ? "" : "; empty = none"));
}

}  // namespace decodelab
