#include "decodelab/table_model.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"

namespace decodelab {

uint64_t hash_context(std::span<const TokenId> context, uint64_t seed) {
  // splitmix64 over (seed, length, tokens): different lengths never collide by construction of
  // the length word, and the mix is good enough to decorrelate neighbouring contexts.
  auto mix = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(seed ^ 0x5DEECE66Dull);
  h = mix(h ^ context.size());
  for (TokenId t : context) h = mix(h ^ uint64_t(uint32_t(t)));
  return h;
}

TableModel::TableModel(std::string name, int vocab_size, int order, LogitsFn fn, TokenId eos)
    : order_(order), fn_(std::move(fn)) {
  if (vocab_size < 2)
    fail(ErrorCode::invalid_argument, "table model: vocab must be >= 2, got " + std::to_string(vocab_size));
  if (order < 0) fail(ErrorCode::invalid_argument, "table model: order must be >= 0, got " + std::to_string(order));
  if (eos < -1 || eos >= vocab_size)
    fail(ErrorCode::invalid_argument, "table model: eos " + std::to_string(eos) + " outside the vocabulary");
  info_.name = std::move(name);
  info_.architecture = "table";
  info_.vocab_size = vocab_size;
  info_.eos = eos;
}

std::shared_ptr<TableModel> TableModel::random(int vocab_size, int order, uint64_t seed, double sharpness,
                                               TokenId eos) {
  if (!(sharpness >= 0.0) || !std::isfinite(sharpness)) {
    fail(ErrorCode::invalid_argument, "table model: sharpness must be finite and >= 0");
  }
  std::ostringstream name;
  name << "table(vocab=" << vocab_size << ",order=" << order << ",seed=" << seed << ",sharpness=" << sharpness << ")";
  auto fn = [vocab_size, seed, sharpness](std::span<const TokenId> context) {
    PhiloxStream rng(seed, hash_context(context, seed));
    std::vector<float> logits(static_cast<std::size_t>(vocab_size));
    for (float& x : logits) x = float(sharpness * rng.normal());
    return logits;
  };
  return std::make_shared<TableModel>(name.str(), vocab_size, order, fn, eos);
}

std::shared_ptr<TableModel> TableModel::from_table(int vocab_size, int order,
                                                   std::map<std::vector<TokenId>, std::vector<float>> probs,
                                                   std::vector<float> fallback, TokenId eos) {
  auto to_logits = [vocab_size](const std::vector<float>& p, const std::string& what) {
    if (int(p.size()) != vocab_size) {
      fail(ErrorCode::invalid_argument, "table model: " + what + " has " + std::to_string(p.size()) +
                                            " probabilities for a vocabulary of " + std::to_string(vocab_size));
    }
    std::vector<float> logits(p.size());
    double sum = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!(p[i] >= 0.0f))
        fail(ErrorCode::invalid_argument, "table model: " + what + " has a negative or NaN probability");
      sum += p[i];
      logits[i] = p[i] > 0.0f ? std::log(p[i]) : -INFINITY;
    }
    if (!(sum > 0.0)) fail(ErrorCode::invalid_argument, "table model: " + what + " has no mass");
    return logits;
  };
  auto table = std::make_shared<std::map<std::vector<TokenId>, std::vector<float>>>();
  for (const auto& [context, p] : probs) (*table)[context] = to_logits(p, "a table row");
  auto fallback_logits = to_logits(fallback, "the fallback row");
  auto fn = [table, fallback_logits](std::span<const TokenId> context) {
    auto it = table->find(std::vector<TokenId>(context.begin(), context.end()));
    return it == table->end() ? fallback_logits : it->second;
  };
  std::ostringstream name;
  name << "table(vocab=" << vocab_size << ",order=" << order << ",explicit)";
  return std::make_shared<TableModel>(name.str(), vocab_size, order, fn, eos);
}

std::shared_ptr<TableModel> TableModel::derive_draft(const TableModel& target, double temper, double noise,
                                                     uint64_t noise_seed, double noise_sharpness) {
  if (!(temper > 0.0) || !std::isfinite(temper)) fail(ErrorCode::invalid_argument, "derive_draft: temper must be > 0");
  if (!(noise >= 0.0 && noise <= 1.0)) fail(ErrorCode::invalid_argument, "derive_draft: noise must be in [0, 1]");
  auto base = target.fn_;
  const int vocab = target.vocab_size();
  auto noise_model = TableModel::random(vocab, target.order(), noise_seed, noise_sharpness);
  auto noise_fn = noise_model->fn_;
  auto fn = [base, noise_fn, temper, noise](std::span<const TokenId> context) {
    std::vector<float> logits = base(context);
    apply_temperature(logits, float(temper));
    std::vector<float> p = softmax(logits);
    if (noise > 0.0) {
      const std::vector<float> r = softmax(noise_fn(context));
      for (std::size_t i = 0; i < p.size(); ++i) p[i] = float((1.0 - noise) * p[i] + noise * r[i]);
    }
    for (std::size_t i = 0; i < p.size(); ++i) logits[i] = p[i] > 0.0f ? std::log(p[i]) : -INFINITY;
    return logits;
  };
  std::ostringstream name;
  name << "draft(of=" << target.info().name << ",temper=" << temper << ",noise=" << noise << ",seed=" << noise_seed
       << ")";
  return std::make_shared<TableModel>(name.str(), vocab, target.order(), fn, target.info().eos);
}

std::vector<float> TableModel::exact_logits(std::span<const TokenId> context) const {
  const std::size_t n = std::min<std::size_t>(context.size(), std::size_t(order_));
  std::vector<float> logits = fn_(context.subspan(context.size() - n));
  if (int(logits.size()) != info_.vocab_size) {
    fail(ErrorCode::internal, "table model '" + info_.name + "': logits function returned the wrong size");
  }
  return logits;
}

std::vector<float> TableModel::exact_probs(std::span<const TokenId> context) const {
  return softmax(exact_logits(context));
}

void TableModel::set_token_texts(std::vector<std::string> texts) {
  if (int(texts.size()) != info_.vocab_size) {
    fail(ErrorCode::invalid_argument, "set_token_texts: " + std::to_string(texts.size()) +
                                          " texts for a vocabulary of " + std::to_string(info_.vocab_size));
  }
  std::set<std::string> seen;
  for (const auto& t : texts) {
    if (t.empty() || !seen.insert(t).second)
      fail(ErrorCode::invalid_argument, "set_token_texts: empty or repeated text '" + t + "'");
  }
  texts_ = std::move(texts);
}

void TableModel::set_token_embeddings(Matrix embeddings) {
  if (embeddings.rows != info_.vocab_size || embeddings.cols < 1 ||
      embeddings.data.size() != std::size_t(embeddings.rows) * std::size_t(embeddings.cols)) {
    fail(ErrorCode::invalid_argument,
         "set_token_embeddings: expected a [" + std::to_string(info_.vocab_size) + " x dim] matrix");
  }
  embeddings_ = std::move(embeddings);
  embeddings_key_ = fresh_key();
}

void TableModel::random_embeddings(int dim, uint64_t seed) {
  Matrix m;
  m.resize(info_.vocab_size, dim);
  PhiloxStream rng(seed, 0x656d62ull);  // "emb"
  for (float& x : m.data) x = float(rng.normal());
  set_token_embeddings(std::move(m));
}

std::string TableModel::token_text(TokenId token) const {
  if (token < 0 || token >= info_.vocab_size) {
    fail(ErrorCode::invalid_argument,
         "token " + std::to_string(token) + " outside the vocabulary of '" + info_.name + "'");
  }
  if (!texts_.empty()) return texts_[std::size_t(token)];
  if (token < 26) return std::string(" ") + char('a' + token);
  return " t" + std::to_string(token);
}

std::vector<TokenId> TableModel::tokenize(std::string_view text, bool) const {
  std::vector<TokenId> out;
  if (!texts_.empty()) {
    // Greedy longest match over the custom texts, ignoring spaces between tokens.
    std::size_t pos = 0;
    while (pos < text.size()) {
      if (text[pos] == ' ') {
        ++pos;
        continue;
      }
      TokenId best = -1;
      std::size_t best_len = 0;
      for (std::size_t i = 0; i < texts_.size(); ++i) {
        std::string_view t = texts_[i];
        while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
        if (t.size() > best_len && text.substr(pos, t.size()) == t) {
          best = TokenId(i);
          best_len = t.size();
        }
      }
      if (best < 0)
        fail(ErrorCode::invalid_argument,
             "table model '" + info_.name + "': no token matches at '" + std::string(text.substr(pos, 16)) + "'");
      out.push_back(best);
      pos += best_len;
    }
    return out;
  }
  std::istringstream in{std::string(text)};
  std::string word;
  while (in >> word) {
    TokenId id = -1;
    try {
      if (word.size() == 1 && word[0] >= 'a' && word[0] <= 'z') {
        id = word[0] - 'a';
      } else if (word.size() > 1 && (word[0] == 't' || word[0] == '#')) {
        std::size_t used = 0;
        id = std::stoi(word.substr(1), &used);
        if (used != word.size() - 1) id = -1;
      }
    } catch (const std::exception&) {
      id = -1;
    }
    if (id < 0 || id >= info_.vocab_size) {
      fail(ErrorCode::invalid_argument, "table model '" + info_.name + "': no token named '" + word +
                                            "' (tokens are a..z, then t26, t27, ...; or #id)");
    }
    out.push_back(id);
  }
  return out;
}

void TableModel::forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) {
  const std::size_t order = std::size_t(order_);
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const std::span<const TreeNode> nodes = batch[b].nodes;
    out[b].resize(int(nodes.size()), info_.vocab_size);
    // The logits of node i depend only on the last `order` tokens of prefix + path(root .. i): its
    // parent's (or the prefix's) last `order` tokens, shifted by its own token. Building each from
    // its parent's keeps a prefill of n tokens O(n * order), not O(n^2).
    const std::vector<TokenId> prefix_tail = last_tokens(batch[b].seq, order);
    std::vector<std::vector<TokenId>> tails(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const std::vector<TokenId>& before = nodes[i].parent < 0 ? prefix_tail : tails[std::size_t(nodes[i].parent)];
      const std::size_t keep = std::min(before.size(), order == 0 ? 0 : order - 1);
      std::vector<TokenId>& tail = tails[i];
      tail.reserve(keep + 1);
      tail.assign(before.end() - std::ptrdiff_t(keep), before.end());
      if (order > 0) tail.push_back(nodes[i].token);
      const std::vector<float> logits = exact_logits(tail);
      std::copy(logits.begin(), logits.end(), out[b].row(int(i)).begin());
    }
  }
}

std::vector<float> TableModel::compute_next_logits(SeqId seq) {
  return exact_logits(last_tokens(seq, std::size_t(order_)));
}

}  // namespace decodelab
