// Top-W (docs/top_w.md): the closed-form crop against brute force, the objective
// identity, the reductions, invariance to affine rescaling of the embeddings, exact kept sets on
// hand-made cases (ties, -inf, M > vocabulary), fixed points, no randomness, parameter errors,
// and the sample decoder's law with a top_w chain.
#include "decodelab/top_w.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/table_model.hpp"
#include "tests/support/seeded_runs.hpp"
#include "tests/support/stats.hpp"

namespace decodelab {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<TokenId> kept_ids(Sampler& s, std::span<const float> logits) {
  Candidates c = Candidates::from_logits(logits);
  s.apply(c);
  std::vector<TokenId> ids;
  for (const Candidate& x : c.data) ids.push_back(x.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<float> random_logits(int n, uint64_t seed, double scale) {
  PhiloxStream rng(seed, 11);
  std::vector<float> l(static_cast<std::size_t>(n));
  for (float& x : l) x = float(scale * rng.normal());
  return l;
}

Matrix random_matrix(int rows, int cols, uint64_t seed) {
  Matrix m;
  m.resize(rows, cols);
  PhiloxStream rng(seed, 12);
  for (float& x : m.data) x = float(rng.normal());
  return m;
}

Matrix rows_of(std::vector<std::vector<float>> rows) {
  Matrix m;
  m.resize(int(rows.size()), int(rows[0].size()));
  for (std::size_t r = 0; r < rows.size(); ++r) std::copy(rows[r].begin(), rows[r].end(), m.row(int(r)).begin());
  return m;
}

TopW make(TopWSettings s, const Matrix* embeddings = nullptr) {
  TopW t(s);
  if (embeddings) t.set_geometry(TokenGeometry::build(*embeddings));
  return t;
}

// The M most likely token ids (ties: lowest id), in that order.
std::vector<TokenId> top_m(std::span<const float> logits, std::size_t m) {
  std::vector<TokenId> ids;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] != -kInf) ids.push_back(TokenId(i));
  }
  std::stable_sort(ids.begin(), ids.end(),
                   [&](TokenId a, TokenId b) { return logits[std::size_t(a)] > logits[std::size_t(b)]; });
  return {ids.begin(), ids.begin() + std::ptrdiff_t(std::min(m, ids.size()))};
}

TokenId argmax_id(std::span<const float> logits) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: ties keep the lowest id
  }
  return TokenId(best);
}

// --- the closed form ----------------------------------------------------------------------------

TEST(TopWCrop, ClosedFormEqualsBruteForceOverAllSubsets) {
  PhiloxStream rng(2602, 10346);
  int prefix_cases = 0, singleton_cases = 0;
  for (int instance = 0; instance < 400; ++instance) {
    const int n = 1 + int(rng.next_u32() % 12);
    // A pool holding mass in (0.2, 1]: Γ is out of the full vocabulary, not renormalized.
    const double mass = 0.2 + 0.8 * rng.uniform_double();
    std::vector<double> w(static_cast<std::size_t>(n)), log_p(static_cast<std::size_t>(n)),
        psi(static_cast<std::size_t>(n));
    double total = 0.0;
    for (double& x : w) total += (x = std::exp(2.0 * rng.normal()));
    for (int i = 0; i < n; ++i) {
      log_p[std::size_t(i)] = std::log(w[std::size_t(i)] / total * mass);
      psi[std::size_t(i)] = rng.uniform_double() < 0.3 ? 0.0 : 2.0 * rng.uniform_double();
    }
    const double lambda = 4.0 * rng.uniform_double();
    const double beta = 4.0 * rng.uniform_double();
    (beta > lambda ? prefix_cases : singleton_cases) += 1;

    double brute = -std::numeric_limits<double>::infinity();
    std::vector<int> members;
    for (uint32_t subset = 1; subset < (1u << n); ++subset) {
      members.clear();
      for (int i = 0; i < n; ++i) {
        if (subset & (1u << i)) members.push_back(i);
      }
      brute = std::max(brute, top_w::objective(log_p, psi, members, lambda, beta));
    }
    const std::vector<int> crop = top_w::best_crop(log_p, psi, lambda, beta);
    ASSERT_FALSE(crop.empty());
    ASSERT_TRUE(std::is_sorted(crop.begin(), crop.end()));
    if (beta <= lambda) {
      ASSERT_EQ(crop.size(), 1u) << "instance " << instance;
    }
    const double got = top_w::objective(log_p, psi, crop, lambda, beta);
    ASSERT_NEAR(got, brute, 1e-12 * std::max(1.0, std::abs(brute))) << "instance " << instance << " n=" << n;
  }
  EXPECT_GT(prefix_cases, 100);
  EXPECT_GT(singleton_cases, 100);
}

TEST(TopWCrop, ObjectiveIsMinusTheFixedPotentialCost) {
  // Φ(S) = −[E_q ψ + λ H(q) − β log Γ] (§1.8 oracle 2), computed the long way.
  PhiloxStream rng(5, 6);
  for (int instance = 0; instance < 200; ++instance) {
    const int n = 1 + int(rng.next_u32() % 10);
    std::vector<double> log_p(static_cast<std::size_t>(n)), psi(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      log_p[std::size_t(i)] = std::log(0.999 * rng.uniform_double() / n);
      psi[std::size_t(i)] = rng.uniform_double();
    }
    std::vector<int> members;
    for (int i = 0; i < n; ++i) {
      if (rng.uniform_double() < 0.6) members.push_back(i);
    }
    if (members.empty()) members.push_back(0);
    const double lambda = 3.0 * rng.uniform_double(), beta = 3.0 * rng.uniform_double();
    double gamma_s = 0.0;
    for (int i : members) gamma_s += std::exp(log_p[std::size_t(i)]);
    double e_psi = 0.0, entropy = 0.0;
    for (int i : members) {
      const double q = std::exp(log_p[std::size_t(i)]) / gamma_s;
      e_psi += q * psi[std::size_t(i)];
      entropy -= q * std::log(q);
    }
    const double cost = e_psi + lambda * entropy - beta * std::log(gamma_s);
    EXPECT_NEAR(top_w::objective(log_p, psi, members, lambda, beta), -cost, 1e-12 * std::max(1.0, std::abs(cost)));
  }
}

TEST(TopWCrop, TiesGoToTheLowerIndex) {
  const std::vector<double> log_p(4, std::log(0.25));
  const std::vector<double> psi(4, 0.0);
  EXPECT_EQ(top_w::best_crop(log_p, psi, 2.0, 1.0), (std::vector<int>{0}));           // singleton branch
  EXPECT_EQ(top_w::best_crop(log_p, psi, 2.2, 2.8), (std::vector<int>{0, 1, 2, 3}));  // uniform: mass wins
  // Equal β log p − ψ for indices 1 and 3, both above the rest.
  const std::vector<double> lp{std::log(0.1), std::log(0.4), std::log(0.1), std::log(0.4)};
  EXPECT_EQ(top_w::best_crop(lp, psi, 3.0, 1.0), (std::vector<int>{1}));
}

// --- the potential ------------------------------------------------------------------------------

TEST(TopWPotential, NearestSetAndKnnByHand) {
  // Pool of 4; kept = {0, 1}. Similarities of every pool token to kept token 0 and to kept token 1.
  const std::vector<float> to0{1.0f, 0.2f, 0.5f, -0.4f};
  const std::vector<float> to1{0.2f, 1.0f, 0.9f, 0.0f};
  const std::vector<std::span<const float>> sims{to0, to1};
  const std::vector<uint8_t> kept{1, 1, 0, 0};
  std::vector<double> psi(4);
  top_w::geometric_potential(sims, kept, 0.5, 1, psi);
  EXPECT_EQ(psi[0], 0.0);
  EXPECT_EQ(psi[1], 0.0);
  EXPECT_NEAR(psi[2], 0.5 * (1.0 - 0.9), 1e-7);  // nearest kept: token 1
  EXPECT_NEAR(psi[3], 0.5 * (1.0 - 0.0), 1e-7);
  top_w::geometric_potential(sims, kept, 0.5, 2, psi);  // mean distance to both kept tokens
  EXPECT_NEAR(psi[2], 0.5 * ((1.0 - 0.9) + (1.0 - 0.5)) / 2, 1e-7);
  EXPECT_NEAR(psi[3], 0.5 * ((1.0 - 0.0) + (1.0 + 0.4)) / 2, 1e-7);
  top_w::geometric_potential(sims, kept, 0.5, 7, psi);  // k > |S|: all of S
  EXPECT_NEAR(psi[3], 0.5 * ((1.0 - 0.0) + (1.0 + 0.4)) / 2, 1e-7);
}

TEST(TopWPotential, KnnPicksTheKNearestOfMany) {
  std::vector<std::vector<float>> cols{{0.1f}, {0.7f}, {-0.3f}, {0.6f}, {0.2f}};
  std::vector<std::span<const float>> sims;
  for (const auto& c : cols) sims.emplace_back(c);
  const std::vector<uint8_t> kept{0};
  std::vector<double> psi(1);
  top_w::geometric_potential(sims, kept, 1.0, 3, psi);  // nearest three: 0.7, 0.6, 0.2
  EXPECT_NEAR(psi[0], ((1 - 0.7) + (1 - 0.6) + (1 - 0.2)) / 3.0, 1e-6);
}

// --- geometry -----------------------------------------------------------------------------------

TEST(TopWGeometry, StandardizedUnitRowsInvariantToAffineMapsAndCached) {
  const Matrix e = random_matrix(50, 7, 3);
  const auto g = TokenGeometry::build(e);
  ASSERT_EQ(g->vocab(), 50);
  ASSERT_EQ(g->dim(), 7);
  for (int r = 0; r < 50; ++r) EXPECT_NEAR(g->similarity(r, r), 1.0, 1e-5);
  Matrix affine = e;
  for (int r = 0; r < e.rows; ++r) {
    for (int d = 0; d < e.cols; ++d)
      affine.row(r)[std::size_t(d)] = float((0.25 + 0.7 * d) * e.row(r)[std::size_t(d)] + (3.0 - d));
  }
  const auto h = TokenGeometry::build(affine);
  for (int r = 0; r < 50; ++r) {
    for (int d = 0; d < 7; ++d) EXPECT_NEAR(g->row(r)[std::size_t(d)], h->row(r)[std::size_t(d)], 1e-5);
  }
  // The cache is keyed by contents: the same matrix gives the same object, another one another.
  const auto c1 = TokenGeometry::cached(e);
  const Matrix copy = e;
  EXPECT_EQ(TokenGeometry::cached(copy).get(), c1.get());
  EXPECT_NE(TokenGeometry::cached(affine).get(), c1.get());
}

TEST(TopWGeometry, ConstantDimensionAndMeanRowAreFinite) {
  // Dimension 1 is constant (variance clipped), row 2 equals the mean (zero direction).
  const Matrix e = rows_of({{1.0f, 5.0f}, {-1.0f, 5.0f}, {0.0f, 5.0f}});
  const auto g = TokenGeometry::build(e);
  EXPECT_NEAR(g->similarity(0, 1), -1.0, 1e-6);
  EXPECT_EQ(g->similarity(2, 0), 0.0f);
  Matrix bad = e;
  bad.data[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(TokenGeometry::build(bad), Error);
}

// --- reductions ---------------------------------------------------------------------------------

TEST(TopWSampler, GeometryOffAndBetaAtMostLambdaIsGreedy) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const auto l = random_logits(200, seed, 2.0);
    TopW t = make({.lambda = 2.2, .beta = 1.0 + 1.2 * double(seed % 2), .gamma = 0.0});  // β = 1 or 2.2 (= λ)
    EXPECT_EQ(kept_ids(t, l), (std::vector<TokenId>{argmax_id(l)})) << seed;
  }
}

TEST(TopWSampler, LambdaZeroKeepsTheWholePool) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto l = random_logits(300, seed, 3.0);
    TopW t = make({.lambda = 0.0, .beta = 0.5, .gamma = 0.0, .m = 40});
    auto expected = top_m(l, 40);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(kept_ids(t, l), expected) << seed;
  }
  // With geometry on, λ = 0 and a warm start of the whole pool is a fixed point too: every
  // pool token is kept, so ψ ≡ 0 and the mass reward takes everything.
  const Matrix e = random_matrix(300, 8, 1);
  const auto l = random_logits(300, 4, 3.0);
  TopW t = make({.lambda = 0.0, .beta = 0.5, .gamma = 2.0, .m = 40, .p0 = 1.0}, &e);
  auto expected = top_m(l, 40);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(kept_ids(t, l), expected);
  EXPECT_TRUE(t.trace().converged);
  EXPECT_EQ(t.trace().alternations, 1);
}

TEST(TopWSampler, GeometryOffKeepsAProbabilityPrefix) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const auto l = random_logits(500, seed, 1.0 + 0.2 * double(seed));
    TopW t = make({.lambda = 2.2, .beta = 2.3 + 0.3 * double(seed % 10), .gamma = 0.0, .m = 100});
    const auto got = kept_ids(t, l);
    auto expected = top_m(l, got.size());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(got, expected) << seed;
  }
}

// --- hand-made exact cases ----------------------------------------------------------------------

// Tokens 0 and 2 point the same way after standardization (cosine 0.944), token 1 the opposite way
// (cosine -1 to token 0); token 3 has a -inf logit but still counts in the per-dimension statistics.
const Matrix& four_token_embeddings() {
  static const Matrix e = rows_of({{2.0f, 1.0f}, {-2.0f, -1.0f}, {2.0f, 0.5f}, {-2.0f, -0.5f}});
  return e;
}

TEST(TopWSampler, GeometryKeepsTheNearNeighbourOfTwoEquallyLikelyTokens) {
  // p = (0.576, 0.212, 0.212) over tokens 0..2. With warm start {0}: ψ_1 = 2γ, ψ_2 = 0.056γ. For
  // λ = 2.2, β = 5, γ = 1: Φ{0} = -2.757, Φ{0,2} = -2.488, Φ{0,1,2} = -2.582, so {0, 2} even though
  // token 1 comes first in probability order (ties by id); {0, 2} is then a fixed point.
  const std::vector<float> l{1.0f, 0.0f, 0.0f, -kInf};
  TopW on = make({.lambda = 2.2, .beta = 5.0, .gamma = 1.0, .p0 = 0.5}, &four_token_embeddings());
  EXPECT_EQ(kept_ids(on, l), (std::vector<TokenId>{0, 2}));
  EXPECT_EQ(on.trace().pool, 3);  // M = 1200 > vocabulary; the -inf token is not in the pool
  EXPECT_EQ(on.trace().warm, 1);
  EXPECT_EQ(on.trace().alternations, 2);
  EXPECT_TRUE(on.trace().converged);
  // Geometry off: Φ{0,1,2} = -2.146 is best, all three kept.
  TopW off = make({.lambda = 2.2, .beta = 5.0, .gamma = 0.0, .p0 = 0.5});
  EXPECT_EQ(kept_ids(off, l), (std::vector<TokenId>{0, 1, 2}));
  // β = 4: the mass reward no longer pays for token 2 at distance 0.056: greedy.
  TopW less = make({.lambda = 2.2, .beta = 4.0, .gamma = 1.0, .p0 = 0.5}, &four_token_embeddings());
  EXPECT_EQ(kept_ids(less, l), (std::vector<TokenId>{0}));
  // Warm start of the whole pool: ψ ≡ 0 on it, and the geometry-free optimum {0,1,2} is a fixed point.
  TopW whole = make({.lambda = 2.2, .beta = 5.0, .gamma = 1.0, .p0 = 1.0}, &four_token_embeddings());
  EXPECT_EQ(kept_ids(whole, l), (std::vector<TokenId>{0, 1, 2}));
}

TEST(TopWSampler, EqualLogitsBreakTiesByTokenId) {
  const std::vector<float> equal(6, 0.5f);
  TopW pool3 = make({.gamma = 0.0, .m = 3});  // pool = the three lowest ids; uniform: all kept
  EXPECT_EQ(kept_ids(pool3, equal), (std::vector<TokenId>{0, 1, 2}));
  TopW single = make({.lambda = 2.2, .beta = 2.0, .gamma = 0.0});
  EXPECT_EQ(kept_ids(single, equal), (std::vector<TokenId>{0}));
  const std::vector<float> l{0.0f, 1.0f, 0.0f, 3.0f, 0.5f, 3.0f};
  EXPECT_EQ(kept_ids(single, l), (std::vector<TokenId>{3}));
  TopW m1 = make({.gamma = 0.0, .m = 1});
  EXPECT_EQ(kept_ids(m1, l), (std::vector<TokenId>{3}));
}

TEST(TopWSampler, MinusInfinityIsNeverKeptAndMLargerThanVocabulary) {
  const std::vector<float> l{-kInf, 0.0f, -kInf, 0.0f, -kInf};
  TopW t = make({.lambda = 0.0, .beta = 1.0, .gamma = 0.0, .m = 1000000});
  EXPECT_EQ(kept_ids(t, l), (std::vector<TokenId>{1, 3}));
  EXPECT_EQ(t.trace().pool, 2);
  // Candidates holding -inf directly (not through from_logits) are dropped as well.
  Candidates c;
  c.data = {{0, 1.0f, 0.0f}, {1, -kInf, 0.0f}, {2, 0.5f, 0.0f}};
  t.apply(c);
  ASSERT_EQ(c.data.size(), 2u);
  EXPECT_EQ(c.data[0].id, 0);
  EXPECT_EQ(c.data[1].id, 2);
}

TEST(TopWSampler, NaNLogitsAreAnError) {
  std::vector<float> l{0.0f, 1.0f, std::numeric_limits<float>::quiet_NaN()};
  auto chain = parse_chain("top_w(gamma=0)");
  EXPECT_THROW(chain->probs(l), Error);
  Candidates c;
  c.data = {{0, 0.0f, 0.0f}, {7, std::numeric_limits<float>::quiet_NaN(), 0.0f}};
  TopW t = make({.gamma = 0.0});
  try {
    t.apply(c);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::numeric);
    EXPECT_NE(std::string(e.what()).find("token 7 is NaN"), std::string::npos) << e.what();
  }
  c.data = {{0, kInf, 0.0f}};
  EXPECT_THROW(t.apply(c), Error);
}

// --- invariants ---------------------------------------------------------------------------------

struct RandomCase {
  std::vector<float> logits;
  Matrix embeddings;
};

RandomCase random_case(uint64_t seed) {
  return {random_logits(60, seed, 1.5 + 0.1 * double(seed % 7)), random_matrix(60, 6, 1000 + seed)};
}

// Settings under which the geometry moves the crop: a small warm start and a large γ.
TopWSettings geometric_settings() { return {.lambda = 1.0, .beta = 2.0, .gamma = 1.0, .m = 40, .p0 = 0.3}; }

TEST(TopWSampler, OutputInvariantToAffineRescalingOfEmbeddingDimensions) {
  int geometry_mattered = 0, non_affine_differed = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const RandomCase rc = random_case(seed);
    TopW base = make(geometric_settings(), &rc.embeddings);
    const auto expected = kept_ids(base, rc.logits);

    Matrix affine = rc.embeddings, scaled = rc.embeddings, warped = rc.embeddings;
    PhiloxStream rng(seed, 99);
    std::vector<double> a(6), b(6);
    for (int d = 0; d < 6; ++d) {
      a[std::size_t(d)] = 0.05 + 20.0 * rng.uniform_double();
      b[std::size_t(d)] = 50.0 * rng.normal();
    }
    for (int r = 0; r < 60; ++r) {
      for (int d = 0; d < 6; ++d) {
        const float x = rc.embeddings.row(r)[std::size_t(d)];
        affine.row(r)[std::size_t(d)] = float(a[std::size_t(d)] * x + b[std::size_t(d)]);
        scaled.row(r)[std::size_t(d)] = 37.5f * x;
        warped.row(r)[std::size_t(d)] = x * x * x;  // not affine: the control
      }
    }
    TopW t_affine = make(geometric_settings(), &affine);
    TopW t_scaled = make(geometric_settings(), &scaled);
    EXPECT_EQ(kept_ids(t_affine, rc.logits), expected) << seed;
    EXPECT_EQ(kept_ids(t_scaled, rc.logits), expected) << seed;

    TopW t_warped = make(geometric_settings(), &warped);
    non_affine_differed += kept_ids(t_warped, rc.logits) != expected;
    TopWSettings off = geometric_settings();
    off.gamma = 0.0;
    TopW t_off = make(off);
    geometry_mattered += kept_ids(t_off, rc.logits) != expected;
  }
  // The test can fail: the geometry changes the crop, and a non-affine map changes it.
  EXPECT_GE(geometry_mattered, 10);
  EXPECT_GE(non_affine_differed, 3);
}

TEST(TopWSampler, MaskInvariantsAndFixedPoint) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const RandomCase rc = random_case(seed);
    TopWSettings s = geometric_settings();
    s.knn = 1 + int64_t(seed % 3);
    s.m = 60;  // the whole vocabulary, so the test can rebuild the pool
    TopW t = make(s, &rc.embeddings);
    Candidates c = Candidates::from_logits(rc.logits);
    t.apply(c);
    ASSERT_FALSE(c.data.empty());
    EXPECT_TRUE(c.sorted);
    EXPECT_EQ(c.selected, -1);
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      EXPECT_EQ(c.data[i].logit, rc.logits[std::size_t(c.data[i].id)]);  // bit-identical
      if (i > 0) {
        EXPECT_GE(c.data[i - 1].logit, c.data[i].logit);
      }
    }
    // A sampling temperature after top_w does not change what it keeps.
    auto tempered = parse_chain("temperature(t=0.4)");
    Candidates c2 = Candidates::from_logits(rc.logits);
    t.apply(c2);
    tempered->apply(c2);
    ASSERT_EQ(c2.data.size(), c.data.size());

    if (!t.trace().converged) continue;
    // One more alternation from the returned crop gives the same crop (the test's own assembly).
    const auto g = TokenGeometry::build(rc.embeddings);
    const std::vector<TokenId> pool = top_m(rc.logits, 60);
    double z_max = -kInf, sum = 0.0;
    for (float x : rc.logits) z_max = std::max(z_max, double(x));
    for (float x : rc.logits) sum += std::exp(double(x) - z_max);
    std::vector<double> log_p, psi(pool.size());
    std::vector<uint8_t> kept(pool.size(), 0);
    std::vector<int> crop;
    std::vector<std::vector<float>> cols;
    for (std::size_t j = 0; j < pool.size(); ++j) {
      log_p.push_back(double(rc.logits[std::size_t(pool[j])]) - z_max - std::log(sum));
      for (const Candidate& x : c.data) {
        if (x.id == pool[j]) {
          kept[j] = 1;
          crop.push_back(int(j));
        }
      }
    }
    for (int s_idx : crop) {
      std::vector<float> col;
      for (TokenId id : pool) col.push_back(g->similarity(id, pool[std::size_t(s_idx)]));
      cols.push_back(std::move(col));
    }
    std::vector<std::span<const float>> spans(cols.begin(), cols.end());
    top_w::geometric_potential(spans, kept, s.gamma, int(s.knn), psi);
    EXPECT_EQ(top_w::best_crop(log_p, psi, s.lambda, s.beta), crop) << seed;
  }
}

TEST(TopWSampler, DeterministicAndDrawsNoRandomness) {
  const RandomCase rc = random_case(3);
  TopW t = make(geometric_settings(), &rc.embeddings);
  const auto first = kept_ids(t, rc.logits);
  EXPECT_EQ(kept_ids(t, rc.logits), first);
  auto copy = t.clone();
  EXPECT_EQ(kept_ids(*copy, rc.logits), first);
  // top_w then dist draws exactly what dist draws on the kept set: top_w neither selects nor
  // advances anything, step after step.
  auto with = parse_chain("dist(seed=77)");
  auto alone = parse_chain("dist(seed=77)");
  for (int step = 0; step < 20; ++step) {
    const auto l = random_logits(60, 500 + uint64_t(step), 2.0);
    Candidates a = Candidates::from_logits(l);
    t.apply(a);
    EXPECT_EQ(a.selected, -1);
    Candidates b = a;
    with->apply(a);
    // The reference: dist alone on candidates holding just the kept ids, in id order.
    Candidates ref;
    for (const Candidate& x : b.data) ref.data.push_back({x.id, l[std::size_t(x.id)], 0.0f});
    std::sort(ref.data.begin(), ref.data.end(), [](const Candidate& x, const Candidate& y) { return x.id < y.id; });
    alone->apply(ref);
    EXPECT_EQ(a.selected_token(), ref.selected_token()) << step;
    with->accept(a.selected_token());
    alone->accept(ref.selected_token());
  }
}

// --- parameters, binding, decoders --------------------------------------------------------------

TEST(TopWSampler, RegisteredWithDefaultsAndBadParametersNameThemselves) {
  auto chain = parse_chain("top_w");
  ASSERT_EQ(chain->size(), 1u);
  const auto* t = dynamic_cast<const TopW*>(&chain->at(0));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->settings().lambda, 2.2);
  EXPECT_EQ(t->settings().beta, 2.8);
  EXPECT_EQ(t->settings().gamma, 0.6);
  EXPECT_EQ(t->settings().m, 1200);
  EXPECT_EQ(t->settings().p0, 0.999);
  EXPECT_EQ(t->settings().iters, 9);
  EXPECT_EQ(t->settings().t_sel, 1.0);
  EXPECT_EQ(t->settings().knn, 1);
  for (const char* bad : {"lambda=-1", "beta=-0.5", "gamma=-1", "m=0", "p0=1.5", "iters=-1", "t_sel=0", "knn=0"}) {
    const std::string spec = std::string("top_w(") + bad + ")";
    const std::string name(bad, std::string_view(bad).find('='));
    try {
      parse_chain(spec);
      ADD_FAILURE() << spec << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << spec << ": " << e.what();
    }
  }
  try {
    TopW direct({.lambda = std::numeric_limits<double>::quiet_NaN()});
    ADD_FAILURE() << "NaN lambda accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'lambda'"), std::string::npos) << e.what();
  }
}

TEST(TopWSampler, NeedsEmbeddingsOnlyWhenGeometryIsOn) {
  auto model = TableModel::random(10, 1, 4, 1.0);
  const auto l = model->exact_logits(std::vector<TokenId>{1});
  auto chain = parse_chain("top_w");
  try {
    chain->probs(l);  // not bound
    ADD_FAILURE() << "unbound top_w applied";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gamma"), std::string::npos) << e.what();
  }
  try {
    chain->bind({.model = model.get()});
    ADD_FAILURE() << "model without embeddings accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("embeddings"), std::string::npos) << e.what();
  }
  auto off = parse_chain("top_w(gamma=0)");
  off->bind({.model = model.get()});
  EXPECT_NO_THROW(off->probs(l));

  model->random_embeddings(5, 8);
  chain->bind({.model = model.get()});
  const auto* t = dynamic_cast<const TopW*>(&chain->at(0));
  ASSERT_NE(t->geometry(), nullptr);
  EXPECT_EQ(t->geometry()->vocab(), 10);
  EXPECT_NO_THROW(chain->probs(l));
  // Bound twice to the same embeddings: the cached geometry, not a rebuilt one.
  const TokenGeometry* before = t->geometry().get();
  auto again = parse_chain("top_w");
  again->bind({.model = model.get()});
  EXPECT_EQ(dynamic_cast<const TopW*>(&again->at(0))->geometry().get(), before);
  // New embeddings on the same model object: a new key, so a new geometry on the next bind.
  model->random_embeddings(5, 9);
  again->bind({.model = model.get()});
  const TokenGeometry* after = dynamic_cast<const TopW*>(&again->at(0))->geometry().get();
  EXPECT_NE(after, before);
  EXPECT_NE(after->row(0)[0], before->row(0)[0]);
  // A token outside the bound geometry is an error, not a read past the matrix.
  std::vector<float> longer(12, 0.0f);
  EXPECT_THROW(chain->probs(longer), Error);
}

TEST(TopWSampler, SampleDecoderDrawsFromTheCropExactly) {
  auto model = TableModel::random(12, 1, 21, 1.2);
  model->random_embeddings(4, 5);
  ModelSet models{{"target", model.get()}};
  const std::string spec = "top_w(lambda=1,beta=2,gamma=1,p0=0.3),temperature(t=0.8)";
  auto decoder = make_decoder("sample", {{"chain", spec}}, &models);
  const std::vector<TokenId> prompt{3};
  auto chain = parse_chain(spec);
  chain->bind({.model = model.get()});
  const std::vector<float> p = chain->probs(model->exact_logits(prompt));
  int kept = 0;
  for (float x : p) kept += x > 0.0f;
  ASSERT_GE(kept, 2);  // a real crop, not greedy, and not everything
  ASSERT_LT(kept, 12);
  DecodeOptions options;
  options.max_new_tokens = 1;
  const std::vector<int64_t> counts = testing::seeded_outcome_counts(
      *decoder, models, prompt, options, 20000, 12, [](const TokenStream& s) { return std::size_t(s.token(1)); });
  const std::vector<double> expected(p.begin(), p.end());
  EXPECT_FITS_DISTRIBUTION(counts, std::span<const double>(expected), 1e-3);

  auto bare = TableModel::random(12, 1, 21, 1.2);  // no embeddings
  ModelSet bare_models{{"target", bare.get()}};
  TokenStream s(prompt);
  EXPECT_THROW(decoder->generate(bare_models, options, s), Error);
}

}  // namespace
}  // namespace decodelab
