#pragma once
// Top-W: geometry-aware, Wasserstein-regularized truncation (Gholami Davoodi et al., arXiv
// 2602.10346). A crop S of the candidates, with retained mass Γ_S and renormalized law q_S,
// minimizes
//
//     F(S) = W_c(p, q_S) + λ H(q_S) − β log Γ_S,
//
// the transport cost c coming from the model's token-embedding geometry. Top-W alternates two
// steps on a pool of the M most likely tokens (docs/top_w.md):
//
//   * potential: the transport term linearized as E_q[ψ], with ψ_j = γ (1 − max_{s∈S} cos(ê_j, ê_s))
//     (distance to the nearest kept token; with knn = k > 1 the mean distance to the k nearest),
//     0 for j ∈ S;
//   * crop: for fixed ψ the optimum has a closed form. With φ_j = λ log p_j − ψ_j and c = β − λ,
//     maximize Φ(S) = Σ_S p φ / Γ_S + c log Γ_S:
//       c ≤ 0: the single token argmax_j (β log p_j − ψ_j);
//       c > 0: the best prefix of the φ-descending order (one sort, one linear scan).
//
// starting from the top-p (p0) prefix of the pool, until the crop stops changing or `iters`
// alternations. The output keeps the original logits of S and drops everything else; no random
// number is drawn. Ties are broken by pool order (probability descending, then token id).
//
// ê is the embedding matrix z-scored per dimension over the whole vocabulary (population
// variance, clipped at 1e-6) and L2-normalized per row: TokenGeometry, built once per embedding
// matrix and shared through a process-wide cache (found again by the model's embeddings key, so a
// later bind does not even fetch the matrix).
//
//   auto top_w = parse_chain("top_w(t_sel=0.7),temperature(t=0.7),dist(seed=1)");
//   top_w->bind({.model = &target});   // decoders do this; finds or builds the geometry
//
// The pure pieces (crop, objective, potential) are declared here so tests and other engines can
// use them without a model.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "decodelab/language_model.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {

// Standardized, L2-normalized token embeddings ê (fp32, [vocab x dim], row-major).
class TokenGeometry {
 public:
  // Builds ê from a [vocab x dim] matrix; throws Error(invalid_argument) for an empty or
  // inconsistent matrix and Error(numeric) for a non-finite entry.
  static std::shared_ptr<const TokenGeometry> build(const Matrix& embeddings);
  // The geometry of `embeddings` from the process-wide cache (keyed by the matrix's shape and a
  // 64-bit fingerprint of its contents), built on a miss. The cache keeps the last few geometries.
  static std::shared_ptr<const TokenGeometry> cached(const Matrix& embeddings);
  // The geometry of the model's embeddings: found by model.token_embeddings_key() without fetching
  // the matrix when seen before, else cached(model.token_embeddings()). Null when the model has no
  // embeddings; Error(invalid_argument) when the matrix does not have one row per vocabulary token.
  static std::shared_ptr<const TokenGeometry> of(const LanguageModel& model);

  int vocab() const { return vocab_; }
  int dim() const { return dim_; }
  std::span<const float> row(TokenId token) const {
    return {data_.data() + std::size_t(token) * std::size_t(dim_), std::size_t(dim_)};
  }
  // Cosine similarity ⟨ê_a, ê_b⟩ in the fixed summation order every caller of this class uses.
  float similarity(TokenId a, TokenId b) const;

 private:
  TokenGeometry() = default;
  int vocab_ = 0;
  int dim_ = 0;
  std::vector<float> data_;
};

// ⟨a, b⟩ in fp32 with a fixed reduction order (deterministic for a given build).
float dot(std::span<const float> a, std::span<const float> b);

namespace top_w {

// Φ(S) = Σ_{i∈S} p_i φ_i / Γ_S + (β − λ) log Γ_S with φ_i = λ log p_i − ψ_i, i.e. minus the
// fixed-potential objective E_{q_S}[ψ] + λ H(q_S) − β log Γ_S. `log_p[i]` = log p_i (p_i > 0);
// `members` are indices into log_p / psi (non-empty, distinct).
double objective(std::span<const double> log_p, std::span<const double> psi, std::span<const int> members,
                 double lambda, double beta);

// The closed-form maximizer of objective() over all non-empty subsets: the singleton argmax of
// β log p − ψ when β ≤ λ, else the best prefix of the φ-descending order (first maximum). Ties
// go to the lower index. Returned in increasing index order.
std::vector<int> best_crop(std::span<const double> log_p, std::span<const double> psi, double lambda, double beta);

// ψ_j for every pool token j from its similarities to the kept tokens: sim_to_kept[r][j] =
// ⟨ê_j, ê_{s_r}⟩ for the r-th kept token s_r. ψ_j = γ times the mean of the min(k, |S|) smallest
// distances 1 − sim (k = 1: the nearest-set potential γ (1 − max_r sim)); ψ_j = 0 for kept
// tokens (kept[j] != 0), whose mass does not move.
void geometric_potential(std::span<const std::span<const float>> sim_to_kept, std::span<const uint8_t> kept,
                         double gamma, int k, std::span<double> psi);

}  // namespace top_w

struct TopWSettings {
  double lambda = 2.2;  // entropy weight λ
  double beta = 2.8;    // mass reward β
  double gamma = 0.6;   // weight of the geometric potential γ; 0 = geometry off
  int64_t m = 1200;     // candidate pool: the M most likely tokens
  double p0 = 0.999;    // warm start: the top-p prefix of the pool holding p0 of its mass
  int64_t iters = 9;    // alternations at most
  double t_sel = 1.0;   // temperature of the probabilities the crop is selected on
  int64_t knn = 1;      // potential over the k nearest kept tokens; 1 = nearest-set
  // Throws Error(invalid_argument) naming the first out-of-range parameter.
  void validate() const;
};

// What the last apply() did (for tests, benchmarks and decoder metrics).
struct TopWTrace {
  int pool = 0;            // pool size
  int warm = 0;            // warm-start crop size
  int alternations = 0;    // alternations run
  bool converged = false;  // the crop reached a fixed point before `iters` ran out
  int kept = 0;            // final crop size
};

class TopW final : public Sampler {
 public:
  explicit TopW(TopWSettings settings);
  std::string name() const override;
  // Keeps the crop, in pool order (so the candidates come out sorted). Throws Error(numeric) for
  // a NaN or +inf logit, Error(invalid_argument) when γ > 0 and no geometry is bound or a token
  // lies outside it.
  void apply(Candidates& candidates) override;
  // Settings and geometry; not the scratch buffers.
  std::unique_ptr<Sampler> clone() const override;
  // Takes the geometry of context.model (cached per embedding matrix). With γ = 0 nothing is
  // needed and a model without embeddings is fine; with γ > 0 such a model is an error.
  void bind(const SamplerContext& context) override;
  // For engines without a LanguageModel: use this geometry directly.
  void set_geometry(std::shared_ptr<const TokenGeometry> geometry) { geometry_ = std::move(geometry); }
  const std::shared_ptr<const TokenGeometry>& geometry() const { return geometry_; }

  const TopWSettings& settings() const { return s_; }
  const TopWTrace& trace() const { return trace_; }

 private:
  TopWSettings s_;
  std::shared_ptr<const TokenGeometry> geometry_;
  TopWTrace trace_;
  // Per-step scratch, reused across steps (not state: apply() overwrites all of it).
  std::vector<double> log_p_, psi_;
  std::vector<float> rows_;  // [pool x dim] ê rows of the pool
  // Similarity columns, computed the first time a pool token is kept and reused by the later
  // alternations of the same step: column_of_[s] indexes columns_ (pool-sized blocks), -1 = none.
  std::vector<float> columns_;
  std::vector<int> column_of_;
};

}  // namespace decodelab
