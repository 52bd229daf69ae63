#pragma once
// Internal to libdecodelab.so: a LanguageModel whose forward pass and KV state live in the
// caller's code, behind the callbacks of decodelab_model_callbacks (decodelab.h).
//
// It derives from SequenceTable, so decodelab keeps the sequences, their committed tokens, the
// pending tree and the cached next logits, and validates every call (trees, commit paths,
// rollback lengths, tokens in the vocabulary) before the callbacks see it: a callback is only
// ever asked something valid. Each sequence's storage is the caller's sequence, known to the
// callbacks by an id of the callback model's own (new_sequence / fork give a fresh one).
//
// A callback that returns a status other than DECODELAB_OK stops the operation with a
// CallbackFailure naming the model, the callback and the status; no exception ever enters the
// caller's code, and none escapes the C API (guarded turns it into DECODELAB_ERR_CALLBACK).
#include <string>

#include "decodelab/decodelab.h"
#include "decodelab/error.hpp"
#include "decodelab/sequence_table.hpp"

namespace decodelab::capi {

// A callback reported failure. Carries the callback's own status.
class CallbackFailure : public Error {
 public:
  CallbackFailure(decodelab_status status, const std::string& message)
      : Error(ErrorCode::internal, message), status_(status) {}
  decodelab_status callback_status() const { return status_; }

 private:
  decodelab_status status_;
};

class CallbackModel final : public SequenceTable {
 public:
  // Checks the callbacks (every function pointer set, vocabulary >= 1); takes ownership of `user`
  // (destroy() is called from the destructor, also when construction fails after the checks).
  explicit CallbackModel(const decodelab_model_callbacks& callbacks);
  ~CallbackModel() override;

  const ModelInfo& info() const override { return info_; }
  std::string token_text(TokenId token) const override;

  // Calls `status` = callback(...) and throws CallbackFailure naming `what` unless it is OK.
  void check(decodelab_status status, const std::string& what) const;
  const decodelab_model_callbacks& callbacks() const { return callbacks_; }
  int32_t next_user_id() { return next_user_id_++; }

 protected:
  void forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) override;
  std::unique_ptr<SequenceStorage> new_storage() override;

 private:
  decodelab_model_callbacks callbacks_;
  ModelInfo info_;
  int32_t next_user_id_ = 0;
};

}  // namespace decodelab::capi
