// top_w: geometry-aware, Wasserstein-regularized truncation (see top_w.hpp and docs/top_w.md).
#include "decodelab/top_w.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <list>
#include <mutex>
#include <numeric>

#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"

namespace decodelab {

// --- geometry ------------------------------------------------------------------------------------

namespace {

// ⟨a, b_r⟩ for R rows b_r at once, so `a` is read once per R rows. Written with GCC/Clang vector
// types so it vectorizes whatever it is inlined into (auto-vectorization of the plain loop came
// and went with the inlining context): 16 lanes per output as two 8-float vectors, then a fixed
// tree reduction. No reassociation beyond that, and each output's arithmetic is the same for
// every R and both argument orders (a_i b_i = b_i a_i), so a similarity has one value whichever
// way it was computed.
using Float8 = float __attribute__((vector_size(32)));

inline Float8 load8(const float* p) {
  Float8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <std::size_t R>
void dot_rows(const float* a, const float* const (&b)[R], std::size_t n, float (&out)[R]) {
  Float8 lo[R], hi[R];
  for (std::size_t r = 0; r < R; ++r) lo[r] = hi[r] = Float8{};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const Float8 a_lo = load8(a + i), a_hi = load8(a + i + 8);
    for (std::size_t r = 0; r < R; ++r) {
      lo[r] += a_lo * load8(b[r] + i);
      hi[r] += a_hi * load8(b[r] + i + 8);
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    float tail = 0.0f;
    for (std::size_t k = i; k < n; ++k) tail += a[k] * b[r][k];
    const Float8 v = lo[r] + hi[r];
    const float s0 = (v[0] + v[4]) + (v[2] + v[6]);
    const float s1 = (v[1] + v[5]) + (v[3] + v[7]);
    out[r] = (s0 + s1) + tail;
  }
}

}  // namespace

float dot(std::span<const float> a, std::span<const float> b) {
  const float* rows[1] = {b.data()};
  float out[1];
  dot_rows<1>(a.data(), rows, std::min(a.size(), b.size()), out);
  return out[0];
}

float TokenGeometry::similarity(TokenId a, TokenId b) const { return dot(row(a), row(b)); }

std::shared_ptr<const TokenGeometry> TokenGeometry::build(const Matrix& e) {
  if (e.rows < 1 || e.cols < 1 || e.data.size() != std::size_t(e.rows) * std::size_t(e.cols)) {
    fail(ErrorCode::invalid_argument, "token embeddings: expected a non-empty [vocab x dim] matrix, got " +
                                          std::to_string(e.rows) + " x " + std::to_string(e.cols) + " with " +
                                          std::to_string(e.data.size()) + " values");
  }
  const std::size_t rows = std::size_t(e.rows), cols = std::size_t(e.cols);
  // z-score per dimension over the whole vocabulary (population variance, clipped at 1e-6 so a
  // constant dimension does not blow up), in double: two passes for an accurate variance.
  std::vector<double> mean(cols, 0.0), var(cols, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* x = e.data.data() + r * cols;
    for (std::size_t d = 0; d < cols; ++d) {
      if (!std::isfinite(x[d])) {
        fail(ErrorCode::numeric,
             "token embeddings: non-finite value at row " + std::to_string(r) + ", column " + std::to_string(d));
      }
      mean[d] += x[d];
    }
  }
  for (double& m : mean) m /= double(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* x = e.data.data() + r * cols;
    for (std::size_t d = 0; d < cols; ++d) {
      const double c = double(x[d]) - mean[d];
      var[d] += c * c;
    }
  }
  std::vector<double> inv_std(cols);
  for (std::size_t d = 0; d < cols; ++d) inv_std[d] = 1.0 / std::sqrt(std::max(var[d] / double(rows), 1e-6));

  auto g = std::shared_ptr<TokenGeometry>(new TokenGeometry());
  g->vocab_ = e.rows;
  g->dim_ = e.cols;
  g->data_.resize(rows * cols);
  std::vector<double> z(cols);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* x = e.data.data() + r * cols;
    double norm2 = 0.0;
    for (std::size_t d = 0; d < cols; ++d) {
      z[d] = (double(x[d]) - mean[d]) * inv_std[d];
      norm2 += z[d] * z[d];
    }
    // A row equal to the mean has no direction: it stays zero (similarity 0 to everything).
    const double norm = std::sqrt(norm2);
    const double inv = norm > 1e-12 ? 1.0 / norm : 0.0;
    float* out = g->data_.data() + r * cols;
    for (std::size_t d = 0; d < cols; ++d) out[d] = float(z[d] * inv);
  }
  return g;
}

namespace {

// 64-bit fingerprint of a matrix's shape and bits: four interleaved multiply-xorshift lanes (the
// latency of one lane would otherwise dominate on a 150k x 900 table).
uint64_t fingerprint(const Matrix& e) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  uint64_t lane[4] = {uint64_t(e.rows), uint64_t(e.cols), 0x243f6a8885a308d3ull, 0x13198a2e03707344ull};
  const std::size_t bytes = e.data.size() * sizeof(float);
  const auto* p = reinterpret_cast<const unsigned char*>(e.data.data());
  std::size_t i = 0;
  for (; i + 32 <= bytes; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lane[l] = (lane[l] ^ w) * kMul;
      lane[l] ^= lane[l] >> 29;
    }
  }
  for (; i < bytes; ++i) lane[0] = (lane[0] ^ p[i]) * kMul;
  uint64_t h = uint64_t(bytes);
  for (uint64_t x : lane) {
    h = (h ^ x) * kMul;
    h ^= h >> 32;
  }
  return h;
}

struct CacheEntry {
  int rows, cols;
  uint64_t hash;
  std::shared_ptr<const TokenGeometry> geometry;
};

}  // namespace

std::shared_ptr<const TokenGeometry> TokenGeometry::cached(const Matrix& e) {
  // A handful of entries: a process usually serves one target (maybe a draft). Each holds
  // vocab x dim floats, so the cache is small on purpose; least recently used goes first.
  constexpr std::size_t kCapacity = 2;
  static std::mutex mutex;
  static std::list<CacheEntry> entries;
  const uint64_t hash = fingerprint(e);
  {
    std::lock_guard lock(mutex);
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      if (it->rows == e.rows && it->cols == e.cols && it->hash == hash) {
        entries.splice(entries.begin(), entries, it);
        return entries.front().geometry;
      }
    }
  }
  auto geometry = build(e);  // outside the lock: it takes a while on a real vocabulary
  std::lock_guard lock(mutex);
  entries.push_front({e.rows, e.cols, hash, geometry});
  while (entries.size() > kCapacity) entries.pop_back();
  return geometry;
}

std::shared_ptr<const TokenGeometry> TokenGeometry::of(const LanguageModel& model) {
  // By the model's embeddings key first: a hit costs no fetch (no dequantization). Weak
  // references: what keeps a geometry alive is the content cache above and the samplers using it.
  constexpr std::size_t kCapacity = 8;
  static std::mutex mutex;
  static std::list<std::pair<uint64_t, std::weak_ptr<const TokenGeometry>>> by_key;
  const uint64_t key = model.token_embeddings_key();
  {
    std::lock_guard lock(mutex);
    for (auto it = by_key.begin(); it != by_key.end(); ++it) {
      if (it->first != key) continue;
      if (auto g = it->second.lock(); g && g->vocab() == model.vocab_size()) {
        by_key.splice(by_key.begin(), by_key, it);
        return g;
      }
      by_key.erase(it);
      break;
    }
  }
  const std::optional<Matrix> e = model.token_embeddings();
  if (!e) return nullptr;
  if (e->rows != model.vocab_size()) {
    fail(ErrorCode::invalid_argument, "model '" + model.info().name + "': token-embedding matrix has " +
                                          std::to_string(e->rows) + " rows for a vocabulary of " +
                                          std::to_string(model.vocab_size()));
  }
  auto g = cached(*e);
  std::lock_guard lock(mutex);
  by_key.emplace_front(key, g);
  while (by_key.size() > kCapacity) by_key.pop_back();
  return g;
}

// --- the closed-form crop and the potential ------------------------------------------------------

namespace top_w {

double objective(std::span<const double> log_p, std::span<const double> psi, std::span<const int> members,
                 double lambda, double beta) {
  if (members.empty()) fail(ErrorCode::invalid_argument, "top_w::objective: empty crop");
  // Masses relative to the largest member, so tiny probabilities neither underflow Γ nor lose A/Γ.
  double top = -std::numeric_limits<double>::infinity();
  for (int i : members) top = std::max(top, log_p[std::size_t(i)]);
  double w_sum = 0.0, a_sum = 0.0;
  for (int i : members) {
    const double w = std::exp(log_p[std::size_t(i)] - top);
    w_sum += w;
    a_sum += w * (lambda * log_p[std::size_t(i)] - psi[std::size_t(i)]);
  }
  return a_sum / w_sum + (beta - lambda) * (top + std::log(w_sum));
}

std::vector<int> best_crop(std::span<const double> log_p, std::span<const double> psi, double lambda, double beta) {
  const std::size_t n = log_p.size();
  if (n == 0 || psi.size() != n)
    fail(ErrorCode::invalid_argument, "top_w::best_crop: empty pool or potential of another size");
  if (beta <= lambda) {
    // Singleton: Φ({i}) = β log p_i − ψ_i, and no larger crop beats its best element.
    std::size_t best = 0;
    for (std::size_t i = 1; i < n; ++i) {
      if (beta * log_p[i] - psi[i] > beta * log_p[best] - psi[best]) best = i;
    }
    return {int(best)};
  }
  std::vector<double> phi(n);
  for (std::size_t i = 0; i < n; ++i) phi[i] = lambda * log_p[i] - psi[i];
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return phi[std::size_t(a)] > phi[std::size_t(b)]; });
  // Prefix scan of Φ(S_k) = A_k / Γ_k + c log Γ_k; masses relative to the pool's largest.
  const double top = *std::max_element(log_p.begin(), log_p.end());
  const double c = beta - lambda;
  double w_sum = 0.0, a_sum = 0.0;
  double best_score = -std::numeric_limits<double>::infinity();
  std::size_t best_k = 1;
  for (std::size_t k = 1; k <= n; ++k) {
    const std::size_t i = std::size_t(order[k - 1]);
    const double w = std::exp(log_p[i] - top);
    w_sum += w;
    a_sum += w * phi[i];
    if (w_sum <= 0.0) continue;  // every mass so far underflowed: no usable score yet
    const double score = a_sum / w_sum + c * (top + std::log(w_sum));
    if (score > best_score) {
      best_score = score;
      best_k = k;
    }
  }
  std::vector<int> crop(order.begin(), order.begin() + std::ptrdiff_t(best_k));
  std::sort(crop.begin(), crop.end());
  return crop;
}

void geometric_potential(std::span<const std::span<const float>> sim_to_kept, std::span<const uint8_t> kept,
                         double gamma, int k, std::span<double> psi) {
  if (sim_to_kept.empty()) fail(ErrorCode::invalid_argument, "top_w::geometric_potential: no kept token");
  if (k < 1) fail(ErrorCode::invalid_argument, "top_w::geometric_potential: knn must be >= 1");
  const std::size_t n = psi.size();
  const std::size_t neighbours = std::min(std::size_t(k), sim_to_kept.size());
  std::vector<double> nearest(neighbours);  // the largest similarities so far, descending
  for (std::size_t j = 0; j < n; ++j) {
    if (kept[j]) {
      psi[j] = 0.0;
      continue;
    }
    if (neighbours == 1) {
      float best = -std::numeric_limits<float>::infinity();
      for (const auto& col : sim_to_kept) best = std::max(best, col[j]);
      psi[j] = gamma * (1.0 - double(best));
      continue;
    }
    std::size_t filled = 0;
    for (const auto& col : sim_to_kept) {
      const double s = col[j];
      if (filled < neighbours) {
        ++filled;
      } else if (s <= nearest[neighbours - 1]) {
        continue;
      }
      std::size_t pos = filled - 1;  // insertion into the descending list, dropping the smallest
      while (pos > 0 && nearest[pos - 1] < s) {
        nearest[pos] = nearest[pos - 1];
        --pos;
      }
      nearest[pos] = s;
    }
    double distance = 0.0;
    for (double s : nearest) distance += 1.0 - s;
    psi[j] = gamma * distance / double(neighbours);
  }
}

}  // namespace top_w

// --- the sampler ---------------------------------------------------------------------------------

namespace {

std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

void check_range(const char* name, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {
    fail(ErrorCode::invalid_argument, std::string("top_w: parameter '") + name + "' = " + format_number(value) +
                                          " is out of range [" + format_number(lo) + ", " + format_number(hi) + "]");
  }
}

}  // namespace

void TopWSettings::validate() const {
  check_range("lambda", lambda, 0.0, 1e6);
  check_range("beta", beta, 0.0, 1e6);
  check_range("gamma", gamma, 0.0, 1e6);
  check_range("m", double(m), 1.0, 1e9);
  check_range("p0", p0, 0.0, 1.0);
  check_range("iters", double(iters), 0.0, 1000.0);
  check_range("t_sel", t_sel, 1e-6, 1e6);
  check_range("knn", double(knn), 1.0, 1e6);
}

TopW::TopW(TopWSettings settings) : s_(settings) { s_.validate(); }

std::string TopW::name() const {
  return "top_w(lambda=" + format_number(s_.lambda) + ",beta=" + format_number(s_.beta) +
         ",gamma=" + format_number(s_.gamma) + ",m=" + std::to_string(s_.m) + ",p0=" + format_number(s_.p0) +
         ",iters=" + std::to_string(s_.iters) + ",t_sel=" + format_number(s_.t_sel) + ",knn=" + std::to_string(s_.knn) +
         ")";
}

std::unique_ptr<Sampler> TopW::clone() const {
  auto copy = std::make_unique<TopW>(s_);
  copy->geometry_ = geometry_;
  return copy;
}

void TopW::bind(const SamplerContext& context) {
  if (s_.gamma == 0.0) return;  // geometry off: no need to fetch the embeddings
  if (!context.model && context.token_embeddings) {
    const Matrix& e = *context.token_embeddings;
    if (e.rows <= 0 || e.cols <= 0 || e.data.size() != std::size_t(e.rows) * std::size_t(e.cols))
      fail(ErrorCode::invalid_argument, "top_w: token embeddings must be a non-empty [vocab x dim] matrix, got " +
                                            std::to_string(e.rows) + " x " + std::to_string(e.cols));
    for (std::size_t i = 0; i < e.data.size(); ++i) {
      if (!std::isfinite(e.data[i]))
        fail(ErrorCode::numeric, "top_w: token embedding of token " + std::to_string(i / std::size_t(e.cols)) +
                                     " has a NaN or infinite entry");
    }
    geometry_ = TokenGeometry::cached(e);
    return;
  }
  if (!context.model) return;
  const LanguageModel& model = *context.model;
  geometry_ = TokenGeometry::of(model);
  if (!geometry_) {
    fail(ErrorCode::invalid_argument, "top_w: gamma = " + format_number(s_.gamma) +
                                          " needs token embeddings, and model '" + model.info().name +
                                          "' has none (gamma=0 turns the geometry off)");
  }
}

void TopW::apply(Candidates& c) {
  trace_ = {};
  if (c.data.empty()) fail(ErrorCode::numeric, "top_w: no candidates");
  constexpr float kInf = std::numeric_limits<float>::infinity();
  float z_max = -kInf;
  std::size_t finite = 0;
  for (const Candidate& x : c.data) {
    if (std::isnan(x.logit) || x.logit == kInf) {
      fail(ErrorCode::numeric,
           "top_w: logit of token " + std::to_string(x.id) + " is " + (std::isnan(x.logit) ? "NaN" : "+inf"));
    }
    if (x.logit != -kInf) {
      ++finite;
      z_max = std::max(z_max, x.logit);
    }
  }
  if (finite == 0) fail(ErrorCode::numeric, "top_w: every logit is -inf, nothing can be kept");
  const bool geometric = s_.gamma > 0.0;
  if (geometric && !geometry_) {
    fail(ErrorCode::invalid_argument,
         "top_w: gamma > 0 needs the token-embedding geometry, and none is bound (bind the chain to a model with token "
         "embeddings, or set gamma=0)");
  }

  // Selection probabilities p = softmax(z / t_sel) over every current candidate, in log space:
  // the pool's masses are not renormalized (Γ is the mass kept out of everything).
  const double inv_t = 1.0 / s_.t_sel;
  double sum = 0.0;
  for (const Candidate& x : c.data) {
    if (x.logit != -kInf) sum += std::exp((double(x.logit) - double(z_max)) * inv_t);
  }
  const double log_z = std::log(sum);

  // Pool: the M most likely (ties: lowest id first), which sort_top leaves in order at the front;
  // -inf logits sort last and are never in it.
  const TokenId chosen = c.selected >= 0 ? c.data[std::size_t(c.selected)].id : -1;
  const std::size_t pool = c.sort_top(std::min<std::size_t>(std::size_t(s_.m), finite));
  trace_.pool = int(pool);
  log_p_.resize(pool);
  psi_.assign(pool, 0.0);
  for (std::size_t i = 0; i < pool; ++i) {
    const TokenId id = c.data[i].id;
    if (geometric && (id < 0 || id >= geometry_->vocab())) {
      fail(ErrorCode::invalid_argument, "top_w: token " + std::to_string(id) +
                                            " is outside the token-embedding matrix (" +
                                            std::to_string(geometry_->vocab()) + " rows)");
    }
    log_p_[i] = (double(c.data[i].logit) - double(z_max)) * inv_t - log_z;
  }

  // Warm start: the shortest prefix holding p0 of the pool's mass (at least one token).
  double pool_mass = 0.0;
  for (double lp : log_p_) pool_mass += std::exp(lp);
  std::size_t warm = 1;
  for (double cum = std::exp(log_p_[0]); warm < pool && cum < s_.p0 * pool_mass; ++warm) cum += std::exp(log_p_[warm]);
  std::vector<int> crop(warm);
  std::iota(crop.begin(), crop.end(), 0);
  trace_.warm = int(warm);

  std::vector<uint8_t> kept(pool, 0);
  column_of_.assign(pool, -1);
  const std::size_t dim = geometric ? std::size_t(geometry_->dim()) : 0;
  if (geometric) {
    // The pool's rows, gathered once: contiguous rows keep the similarity loops in cache and TLB
    // instead of hopping around a vocab x dim table.
    rows_.resize(pool * dim);
    for (std::size_t j = 0; j < pool; ++j) {
      const auto row = geometry_->row(c.data[j].id);
      std::copy(row.begin(), row.end(), rows_.begin() + std::ptrdiff_t(j * dim));
    }
  }
  std::size_t columns = 0;
  std::vector<std::span<const float>> sim_to_kept;
  for (int64_t it = 0; it < s_.iters; ++it) {
    if (geometric) {
      std::fill(kept.begin(), kept.end(), uint8_t(0));
      for (int s : crop) kept[std::size_t(s)] = 1;
      // Similarities of the whole pool to each kept token; a column is computed once per step,
      // four kept tokens at a time, over tiles of pool rows that stay in cache across the groups.
      std::vector<int> missing;
      for (int s : crop) {
        if (column_of_[std::size_t(s)] < 0) missing.push_back(s);
      }
      constexpr std::size_t kGroup = 4, kTile = 64;
      const std::size_t groups = (missing.size() + kGroup - 1) / kGroup;
      columns_.resize((columns + groups * kGroup) * pool);
      // A short last group repeats its last token; the extra columns are scratch.
      auto member = [&](std::size_t g, std::size_t r) { return missing[std::min(g * kGroup + r, missing.size() - 1)]; };
      for (std::size_t j0 = 0; j0 < pool; j0 += kTile) {
        const std::size_t j1 = std::min(pool, j0 + kTile);
        for (std::size_t g = 0; g < groups; ++g) {
          const float* rows[kGroup];
          float* cols[kGroup];
          for (std::size_t r = 0; r < kGroup; ++r) {
            rows[r] = rows_.data() + std::size_t(member(g, r)) * dim;
            cols[r] = columns_.data() + (columns + g * kGroup + r) * pool;
          }
          for (std::size_t j = j0; j < j1; ++j) {
            const int other = column_of_[j];
            if (other >= 0) {
              // Symmetry: ⟨ê_j, ê_s⟩ is in column j when j was kept earlier (the same value).
              for (std::size_t r = 0; r < kGroup; ++r)
                cols[r][j] = columns_[std::size_t(other) * pool + std::size_t(member(g, r))];
              continue;
            }
            float out[kGroup];
            dot_rows<kGroup>(rows_.data() + j * dim, rows, dim, out);
            for (std::size_t r = 0; r < kGroup; ++r) cols[r][j] = out[r];
          }
        }
      }
      for (std::size_t i = 0; i < missing.size(); ++i) column_of_[std::size_t(missing[i])] = int(columns + i);
      columns += groups * kGroup;
      sim_to_kept.clear();
      for (int s : crop)
        sim_to_kept.emplace_back(columns_.data() + std::size_t(column_of_[std::size_t(s)]) * pool, pool);
      top_w::geometric_potential(sim_to_kept, kept, s_.gamma, int(s_.knn), psi_);
    }
    std::vector<int> next = top_w::best_crop(log_p_, psi_, s_.lambda, s_.beta);
    trace_.alternations = int(it + 1);
    if (next == crop) {
      trace_.converged = true;
      break;
    }
    crop = std::move(next);
  }

  // Keep the crop (original logits, pool order) and drop everything else.
  std::vector<Candidate> out;
  out.reserve(crop.size());
  for (int i : crop) out.push_back(c.data[std::size_t(i)]);
  c.data = std::move(out);
  c.sorted = true;
  c.sorted_prefix = c.data.size();
  c.selected = -1;
  for (std::size_t i = 0; i < c.data.size(); ++i) {
    if (c.data[i].id == chosen) c.selected = int(i);
  }
  trace_.kept = int(c.data.size());
}

namespace {

const RegisterSampler reg({
    .name = "top_w",
    .doc = "Top-W: Wasserstein-regularized truncation over the token-embedding geometry (needs embeddings when gamma > "
           "0).",
    .params = {ParamSpec::real("lambda", 2.2, 0.0, 1e6, "entropy weight: larger = more coherent (smaller) crops"),
               ParamSpec::real("beta", 2.8, 0.0, 1e6, "mass reward: beta <= lambda keeps one token, larger keeps more"),
               ParamSpec::real("gamma", 0.6, 0.0, 1e6, "weight of the embedding-distance potential; 0 = geometry off"),
               ParamSpec::integer("m", 1200, 1, 1e9, "candidate pool: the m most likely tokens"),
               ParamSpec::real("p0", 0.999, 0.0, 1.0, "warm start: top-p mass inside the pool"),
               ParamSpec::integer("iters", 9, 0, 1000, "alternations (potential <-> crop) at most"),
               ParamSpec::real("t_sel", 1.0, 1e-6, 1e6, "temperature of the probabilities the crop is selected on"),
               ParamSpec::integer("knn", 1, 1, 1e6,
                                  "potential: mean distance to the knn nearest kept tokens; 1 = nearest-set")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Sampler> {
      TopWSettings s;
      s.lambda = p.get_real("lambda");
      s.beta = p.get_real("beta");
      s.gamma = p.get_real("gamma");
      s.m = p.get_int("m");
      s.p0 = p.get_real("p0");
      s.iters = p.get_int("iters");
      s.t_sel = p.get_real("t_sel");
      s.knn = p.get_int("knn");
      return std::make_unique<TopW>(s);
    },
});

}  // namespace

}  // namespace decodelab

DECODELAB_BUILTIN(samplers_top_w)
