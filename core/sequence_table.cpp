#include "decodelab/sequence_table.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "decodelab/error.hpp"

namespace decodelab {

SequenceTable::Sequence& SequenceTable::sequence(SeqId seq) {
  return const_cast<Sequence&>(std::as_const(*this).sequence(seq));
}

const SequenceTable::Sequence& SequenceTable::sequence(SeqId seq) const {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) {
    fail(ErrorCode::invalid_argument,
         "model '" + info().name + "': no sequence " + std::to_string(seq) + " (never created, or freed)");
  }
  return it->second;
}

void SequenceTable::drop_pending(Sequence& s) {
  s.pending.clear();
  s.pending_logits = Matrix{};
  s.pending_last_only = false;
  if (s.storage) s.storage->drop_pending();
}

SeqId SequenceTable::add(Sequence s) {
  const SeqId id = next_id_++;
  sequences_.emplace(id, std::move(s));
  return id;
}

SeqId SequenceTable::new_sequence() {
  Sequence s;
  s.storage = new_storage();
  return add(std::move(s));
}

SeqId SequenceTable::fork(SeqId seq) {
  Sequence& parent = sequence(seq);
  Sequence child;
  if (parent.storage) child.storage = parent.storage->fork();
  child.tokens = parent.tokens.fork();
  child.next = parent.next;
  return add(std::move(child));
}

void SequenceTable::free_sequence(SeqId seq) {
  Sequence& s = sequence(seq);
  if (s.storage) s.storage->release();
  sequences_.erase(seq);
}

std::size_t SequenceTable::length(SeqId seq) const { return sequence(seq).tokens.size(); }

std::vector<TokenId> SequenceTable::committed_tokens(SeqId seq) const { return sequence(seq).tokens.to_vector(); }

std::vector<TokenId> SequenceTable::last_tokens(SeqId seq, std::size_t n) const {
  const SegmentChain<std::vector<TokenId>>& tokens = sequence(seq).tokens;
  const std::size_t first = tokens.size() - std::min(n, tokens.size());
  std::vector<TokenId> out;
  out.reserve(tokens.size() - first);
  for (std::size_t i = first; i < tokens.size(); ++i) out.push_back(tokens.at(i));
  return out;
}

void SequenceTable::do_evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) {
  validate_batch(*this, batch);
  std::vector<TreeJob> jobs;
  jobs.reserve(batch.size());
  for (const TreeEval& t : batch) {
    Sequence& s = sequence(t.seq);
    // The new trees replace the pending ones before the forward pass can fail: it overwrites
    // pending rows, so a failed evaluation must not leave an old tree that a commit would copy.
    drop_pending(s);
    jobs.push_back(TreeJob{t.seq, t.nodes, tree_depths(t.nodes), s.tokens.size(), s.storage.get(), t.last_logits_only});
  }
  forward(jobs, out);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const bool one_row = batch[i].last_logits_only && out[i].rows == 1;
    if ((out[i].rows != int(batch[i].nodes.size()) && !one_row) || out[i].cols != info().vocab_size) {
      fail(ErrorCode::internal, "model '" + info().name + "': the forward pass returned " +
                                    std::to_string(out[i].rows) + "x" + std::to_string(out[i].cols) +
                                    " logits for a tree of " + std::to_string(batch[i].nodes.size()) + " nodes");
    }
    Sequence& s = sequence(batch[i].seq);
    s.pending = batch[i].nodes;
    if (batch[i].last_logits_only) {
      // Keep the one row a commit can use (LanguageModel::evaluate trims `out` to it as well).
      s.pending_logits.resize(1, out[i].cols);
      const std::span<const float> last = out[i].row(out[i].rows - 1);
      std::copy(last.begin(), last.end(), s.pending_logits.data.begin());
      s.pending_last_only = true;
    } else {
      s.pending_logits = out[i];
    }
  }
}

void SequenceTable::commit(SeqId seq, std::span<const int32_t> path) {
  Sequence& s = sequence(seq);
  const std::string where = "model '" + info().name + "': commit on sequence " + std::to_string(seq) + ": path[";
  const std::string tree = "the pending tree of " + std::to_string(s.pending.size()) + " nodes";
  for (std::size_t i = 0; i < path.size(); ++i) {
    const int32_t node = path[i];
    if (node < 0 || std::size_t(node) >= s.pending.size()) {
      fail(ErrorCode::invalid_argument,
           where + std::to_string(i) + "] = " + std::to_string(node) + " is not a node of " + tree);
    }
    const int32_t want_parent = i == 0 ? -1 : path[i - 1];
    if (s.pending[std::size_t(node)].parent != want_parent) {
      fail(ErrorCode::invalid_argument,
           where + std::to_string(i) + "] = node " + std::to_string(node) + " is not a child of " +
               (i == 0 ? std::string("the committed prefix") : "node " + std::to_string(want_parent)) + " in " + tree +
               " (a path runs root first, each node the parent of the next)");
    }
  }
  if (!path.empty()) {
    if (s.storage) s.storage->commit(s.tokens.size(), path);
    for (int32_t node : path) s.tokens.tail().push_back(s.pending[std::size_t(node)].token);
    if (!s.pending_last_only) {
      const std::span<const float> row = s.pending_logits.row(path.back());
      s.next.assign(row.begin(), row.end());
    } else if (std::size_t(path.back()) + 1 == s.pending.size()) {
      s.next.assign(s.pending_logits.data.begin(), s.pending_logits.data.end());
    } else {
      s.next.clear();  // that node's logits were not computed: next_logits computes them
    }
  }
  drop_pending(s);
}

void SequenceTable::rollback(SeqId seq, std::size_t new_length) {
  Sequence& s = sequence(seq);
  if (new_length > s.tokens.size()) {
    fail(ErrorCode::invalid_argument, "model '" + info().name + "': rollback of sequence " + std::to_string(seq) +
                                          " to " + std::to_string(new_length) + " tokens: it has only " +
                                          std::to_string(s.tokens.size()));
  }
  drop_pending(s);
  if (new_length == s.tokens.size()) return;
  if (s.storage) s.storage->truncate(new_length);
  s.tokens.truncate(new_length);
  s.next.clear();
}

std::span<const float> SequenceTable::next_logits(SeqId seq) {
  if (sequence(seq).next.empty()) {
    std::vector<float> next = compute_next_logits(seq);
    sequence(seq).next = std::move(next);
  }
  return sequence(seq).next;
}

std::vector<float> SequenceTable::compute_next_logits(SeqId seq) {
  const std::size_t n = length(seq);
  if (n == 0) {
    fail(ErrorCode::invalid_argument,
         "model '" + info().name + "': next_logits of sequence " + std::to_string(seq) + ", which has no tokens");
  }
  const TokenId last = sequence(seq).tokens.at(n - 1);
  rollback(seq, n - 1);
  const std::span<const float> next = append(seq, std::span<const TokenId>(&last, 1));
  return {next.begin(), next.end()};
}

}  // namespace decodelab
