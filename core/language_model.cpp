#include "decodelab/language_model.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <set>
#include <string>

#include "decodelab/error.hpp"

namespace decodelab {

std::vector<TreeNode> chain_nodes(std::span<const TokenId> tokens, int32_t parent, int32_t first_index) {
  std::vector<TreeNode> nodes;
  nodes.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    nodes.push_back(TreeNode{tokens[i], i == 0 ? parent : first_index + int32_t(i) - 1});
  }
  return nodes;
}

std::vector<int32_t> tree_depths(std::span<const TreeNode> nodes) {
  std::vector<int32_t> depth(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const int32_t parent = nodes[i].parent;
    if (parent < -1 || parent >= int32_t(i)) {
      fail(ErrorCode::invalid_argument, "tree node " + std::to_string(i) + " has parent " + std::to_string(parent) +
                                            " (must be -1 or an earlier node)");
    }
    depth[i] = parent < 0 ? 0 : depth[std::size_t(parent)] + 1;
  }
  return depth;
}

uint64_t LanguageModel::fresh_key() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::vector<TokenId> LanguageModel::tokenize(std::string_view, bool) const {
  fail(ErrorCode::unsupported, "model '" + info().name + "' has no tokenizer: give the prompt as token ids");
}

std::string LanguageModel::detokenize(std::span<const TokenId> tokens) const {
  std::string text;
  for (TokenId t : tokens) text += token_text(t);
  return text;
}

void check_kv_room(const LanguageModel& model, std::size_t nodes, std::size_t pending_nodes) {
  const std::size_t budget = model.kv_budget();
  const std::size_t per_token = model.kv_bytes_per_token();
  if (budget == 0 || per_token == 0) return;
  const std::size_t in_use = model.kv_bytes_in_use();
  const std::size_t wanted = (nodes + pending_nodes) * per_token;
  if (in_use + wanted <= budget) return;
  auto mib = [](std::size_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
    return std::string(text);
  };
  fail(ErrorCode::resource_exhausted,
       "model '" + model.info().name + "': evaluating " + std::to_string(nodes) + " tokens needs " +
           mib(nodes * per_token) + " of KV memory, but " + mib(in_use) + " of its KV budget of " + mib(budget) +
           " is in use" +
           (pending_nodes ? " (with " + std::to_string(pending_nodes) + " tokens of the same batch)" : "") +
           "; raise the budget or run fewer or shorter generations at once");
}

void LanguageModel::evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) {
  std::size_t nodes = 0;
  for (const TreeEval& t : batch) nodes += t.nodes.size();
  check_kv_room(*this, nodes);
  out.resize(batch.size());
  do_evaluate(batch, out);
  // A model that computed every row for a last_logits_only tree still answers with one.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].last_logits_only && out[i].rows > 1) {
      const int last = out[i].rows - 1;
      std::copy(out[i].row(last).begin(), out[i].row(last).end(), out[i].data.begin());
      out[i].resize(1, out[i].cols);
    }
  }
  counters_.evaluate_calls += 1;
  for (const TreeEval& t : batch) counters_.nodes_evaluated += int64_t(t.nodes.size());
}

std::span<const float> LanguageModel::append(SeqId seq, std::span<const TokenId> tokens) {
  if (tokens.empty()) return next_logits(seq);
  std::vector<TreeEval> batch{TreeEval{seq, chain_nodes(tokens), true}};
  std::vector<Matrix> out;
  evaluate(batch, out);
  std::vector<int32_t> path(tokens.size());
  for (std::size_t i = 0; i < path.size(); ++i) path[i] = int32_t(i);
  commit(seq, path);
  return next_logits(seq);
}

void validate_batch(const LanguageModel& model, std::span<const TreeEval> batch) {
  const ModelInfo& info = model.info();
  std::set<SeqId> seen;
  for (const TreeEval& t : batch) {
    if (!seen.insert(t.seq).second) {
      fail(ErrorCode::invalid_argument, "sequence " + std::to_string(t.seq) + " appears twice in one evaluate batch");
    }
    const std::size_t committed = model.length(t.seq);  // throws for an unknown sequence
    tree_depths(t.nodes);
    for (std::size_t i = 0; i < t.nodes.size(); ++i) {
      const TokenId tok = t.nodes[i].token;
      if (tok < 0 || tok >= info.vocab_size) {
        fail(ErrorCode::invalid_argument, "tree node " + std::to_string(i) + ": token " + std::to_string(tok) +
                                              " outside the vocabulary of '" + info.name + "' (size " +
                                              std::to_string(info.vocab_size) + ")");
      }
    }
    if (info.context_length > 0 && committed + t.nodes.size() > std::size_t(info.context_length)) {
      fail(ErrorCode::invalid_argument, "sequence " + std::to_string(t.seq) + ": " + std::to_string(committed) +
                                            " committed + " + std::to_string(t.nodes.size()) +
                                            " new tokens exceed the context length " +
                                            std::to_string(info.context_length) + " of '" + info.name + "'");
    }
  }
}

}  // namespace decodelab
