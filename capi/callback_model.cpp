// A LanguageModel over the caller's callbacks: see callback_model.hpp.
#include "capi/callback_model.hpp"

#include <cmath>

namespace decodelab::capi {
namespace {

// One caller sequence. Committed rows are the caller's business; the table has validated every
// call before it reaches here.
class CallbackSequence final : public SequenceStorage {
 public:
  CallbackSequence(CallbackModel& model, int32_t id) : model_(model), id_(id) {}
  ~CallbackSequence() override = default;

  int32_t id() const { return id_; }

  std::unique_ptr<SequenceStorage> fork() override {
    const int32_t child = model_.next_user_id();
    model_.check(model_.callbacks().fork(model_.callbacks().user, id_, child),
                 "fork(parent " + std::to_string(id_) + ", child " + std::to_string(child) + ")");
    return std::make_unique<CallbackSequence>(model_, child);
  }
  void commit(std::size_t, std::span<const int32_t> path) override {
    model_.check(model_.callbacks().commit(model_.callbacks().user, id_, path.data(), path.size()),
                 "commit(sequence " + std::to_string(id_) + ", " + std::to_string(path.size()) + " nodes)");
  }
  void truncate(std::size_t length) override {
    model_.check(model_.callbacks().rollback(model_.callbacks().user, id_, length),
                 "rollback(sequence " + std::to_string(id_) + ", length " + std::to_string(length) + ")");
  }
  void release() override {
    model_.check(model_.callbacks().free_sequence(model_.callbacks().user, id_),
                 "free_sequence(sequence " + std::to_string(id_) + ")");
  }

 private:
  CallbackModel& model_;
  int32_t id_;
};

}  // namespace

CallbackModel::CallbackModel(const decodelab_model_callbacks& callbacks) : callbacks_(callbacks) {
  struct Destroy {  // the caller's state goes if a check below fails
    const decodelab_model_callbacks& c;
    bool armed = true;
    ~Destroy() {
      if (armed && c.destroy) c.destroy(c.user);
    }
  } destroy_on_failure{callbacks};
  const char* missing = !callbacks.new_sequence    ? "new_sequence"
                        : !callbacks.fork          ? "fork"
                        : !callbacks.free_sequence ? "free_sequence"
                        : !callbacks.evaluate      ? "evaluate"
                        : !callbacks.commit        ? "commit"
                        : !callbacks.rollback      ? "rollback"
                                                   : nullptr;
  if (missing) fail(ErrorCode::invalid_argument, std::string("callbacks->") + missing + " is NULL");
  if (callbacks.vocab_size < 1)
    fail(ErrorCode::invalid_argument,
         "callbacks->vocab_size is " + std::to_string(callbacks.vocab_size) + "; a vocabulary has at least one token");
  if (callbacks.eos < -1 || callbacks.eos >= callbacks.vocab_size)
    fail(ErrorCode::invalid_argument, "callbacks->eos " + std::to_string(callbacks.eos) + " is outside the vocabulary");
  if (callbacks.context_length < 0) fail(ErrorCode::invalid_argument, "callbacks->context_length is negative");
  info_.name = callbacks.name && *callbacks.name ? callbacks.name : "callbacks";
  info_.architecture = "callbacks";
  info_.vocab_size = callbacks.vocab_size;
  info_.context_length = callbacks.context_length;
  info_.eos = callbacks.eos;
  callbacks_.name = nullptr;  // not kept: the caller's string may go away
  destroy_on_failure.armed = false;
}

CallbackModel::~CallbackModel() {
  // Sequences still alive are dropped without free_sequence (the caller's state goes with destroy).
  clear_sequences();
  if (callbacks_.destroy) callbacks_.destroy(callbacks_.user);
}

std::string CallbackModel::token_text(TokenId token) const {
  if (token < 0 || token >= info_.vocab_size)
    fail(ErrorCode::invalid_argument,
         "token " + std::to_string(token) + " outside the vocabulary of '" + info_.name + "'");
  std::string text = "<";  // built by appends: GCC 12's -Wrestrict misfires on "<" + to_string(...)
  text += std::to_string(token);
  text += '>';
  return text;
}

void CallbackModel::check(decodelab_status status, const std::string& what) const {
  if (status == DECODELAB_OK) return;
  throw CallbackFailure(status, "model '" + info_.name + "': callback " + what + " returned " +
                                    decodelab_status_name(status) + " (" + std::to_string(int(status)) + ")");
}

std::unique_ptr<SequenceStorage> CallbackModel::new_storage() {
  const int32_t id = next_user_id();
  check(callbacks_.new_sequence(callbacks_.user, id), "new_sequence(sequence " + std::to_string(id) + ")");
  return std::make_unique<CallbackSequence>(*this, id);
}

void CallbackModel::forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) {
  const int vocab = info_.vocab_size;
  std::vector<int32_t> tokens, parents;
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const TreeJob& job = batch[b];
    const int32_t id = static_cast<const CallbackSequence*>(job.storage)->id();
    tokens.clear();
    parents.clear();
    for (const TreeNode& node : job.nodes) {
      tokens.push_back(node.token);
      parents.push_back(node.parent);
    }
    Matrix& logits = out[b];
    logits.resize(int(job.nodes.size()), vocab);
    // NaN marks rows the callback left unwritten, which the check below reports.
    std::fill(logits.data.begin(), logits.data.end(), std::nanf(""));
    check(callbacks_.evaluate(callbacks_.user, id, tokens.data(), parents.data(), tokens.size(), logits.data.data()),
          "evaluate(sequence " + std::to_string(id) + ", " + std::to_string(tokens.size()) + " nodes)");
    for (std::size_t i = 0; i < logits.data.size(); ++i) {
      const float x = logits.data[i];
      if (std::isnan(x) || x == INFINITY)
        fail(ErrorCode::numeric, "model '" + info_.name + "': evaluate(sequence " + std::to_string(id) +
                                     ") gave logit " + std::to_string(x) + " for node " +
                                     std::to_string(i / std::size_t(vocab)) + ", token " +
                                     std::to_string(i % std::size_t(vocab)) + " (NaN or +inf, or not written)");
    }
  }
}

}  // namespace decodelab::capi
