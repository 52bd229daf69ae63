// Every bad input through the C API returns the right status with a message that names the
// function and what was wrong, leaves outputs untouched, and never throws or aborts.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "decodelab/decodelab.h"

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Checks status and that the thread's message mentions each of `words`.
void expect_error(decodelab_status got, decodelab_status want, std::initializer_list<const char*> words) {
  const std::string message = decodelab_last_error();
  EXPECT_EQ(got, want) << decodelab_status_name(got) << ": " << message;
  for (const char* w : words) EXPECT_NE(message.find(w), std::string::npos) << "'" << w << "' not in: " << message;
}

struct Chain {
  decodelab_chain* handle = nullptr;
  explicit Chain(const char* spec) { EXPECT_EQ(decodelab_chain_create(spec, &handle), DECODELAB_OK); }
  ~Chain() { decodelab_chain_free(handle); }
};

TEST(CapiErrors, StatusNames) {
  EXPECT_STREQ(decodelab_status_name(DECODELAB_OK), "ok");
  EXPECT_STREQ(decodelab_status_name(DECODELAB_ERR_INVALID_ARGUMENT), "invalid_argument");
  EXPECT_STREQ(decodelab_status_name(DECODELAB_ERR_NOT_FOUND), "not_found");
  EXPECT_STREQ(decodelab_status_name(DECODELAB_ERR_BAD_FORMAT), "bad_format");
  EXPECT_STREQ(decodelab_status_name(DECODELAB_ERR_UNSUPPORTED), "unsupported");
  EXPECT_STREQ(decodelab_status_name(DECODELAB_ERR_NUMERIC), "numeric");
  EXPECT_STREQ(decodelab_status_name(DECODELAB_ERR_OUT_OF_MEMORY), "out_of_memory");
  EXPECT_STREQ(decodelab_status_name(DECODELAB_ERR_INTERNAL), "internal");
  EXPECT_STREQ(decodelab_status_name(decodelab_status(42)), "unknown");
}

TEST(CapiErrors, BadSpecs) {
  decodelab_chain* out = nullptr;
  expect_error(decodelab_chain_create("top_k(k=3", &out), DECODELAB_ERR_BAD_FORMAT,
               {"decodelab_chain_create", "top_k(k=3", "'('"});
  expect_error(decodelab_chain_create("top_k(k=3))", &out), DECODELAB_ERR_BAD_FORMAT, {"')'"});
  expect_error(decodelab_chain_create("no_such(x=1)", &out), DECODELAB_ERR_NOT_FOUND, {"no_such", "top_k"});
  expect_error(decodelab_chain_create("top_k(k=-1)", &out), DECODELAB_ERR_INVALID_ARGUMENT, {"'k'", "-1"});
  expect_error(decodelab_chain_create("top_k(kk=1)", &out), DECODELAB_ERR_INVALID_ARGUMENT, {"kk"});
  expect_error(decodelab_chain_create("top_p(p=abc)", &out), DECODELAB_ERR_INVALID_ARGUMENT, {"abc"});
  expect_error(decodelab_chain_from_params("temperature=-1", &out), DECODELAB_ERR_INVALID_ARGUMENT,
               {"decodelab_chain_from_params", "temperature"});
  expect_error(decodelab_chain_from_params("nonsense=1", &out), DECODELAB_ERR_INVALID_ARGUMENT, {"nonsense"});
  expect_error(decodelab_chain_from_params("chain=top_k(k=", &out), DECODELAB_ERR_BAD_FORMAT, {"'('"});
  EXPECT_EQ(out, nullptr);  // outputs are written only on success
}

TEST(CapiErrors, NullPointersAreNamed) {
  Chain chain("top_k(k=2)");
  decodelab_chain* out = nullptr;
  float logits[4] = {1, 2, 3, 4};
  float probs[4];
  int32_t token = 0;
  size_t n = 0;
  double d = 0;
  expect_error(decodelab_chain_create(nullptr, &out), DECODELAB_ERR_INVALID_ARGUMENT, {"spec is NULL"});
  expect_error(decodelab_chain_create("", nullptr), DECODELAB_ERR_INVALID_ARGUMENT, {"out is NULL"});
  expect_error(decodelab_chain_from_params(nullptr, &out), DECODELAB_ERR_INVALID_ARGUMENT, {"params is NULL"});
  expect_error(decodelab_chain_clone(nullptr, &out), DECODELAB_ERR_INVALID_ARGUMENT, {"chain is NULL"});
  expect_error(decodelab_chain_clone(chain.handle, nullptr), DECODELAB_ERR_INVALID_ARGUMENT, {"out is NULL"});
  expect_error(decodelab_chain_length(nullptr, &n), DECODELAB_ERR_INVALID_ARGUMENT, {"chain is NULL"});
  expect_error(decodelab_chain_length(chain.handle, nullptr), DECODELAB_ERR_INVALID_ARGUMENT, {"out is NULL"});
  expect_error(decodelab_chain_describe(nullptr, nullptr, 0, &n), DECODELAB_ERR_INVALID_ARGUMENT, {"chain is NULL"});
  expect_error(decodelab_chain_describe(chain.handle, nullptr, 0, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"length is NULL"});
  expect_error(decodelab_chain_describe(chain.handle, nullptr, 5, &n), DECODELAB_ERR_INVALID_ARGUMENT, {"buf is NULL"});
  expect_error(decodelab_chain_apply(nullptr, logits, 4, &token), DECODELAB_ERR_INVALID_ARGUMENT,
               {"decodelab_chain_apply", "chain is NULL"});
  expect_error(decodelab_chain_apply(chain.handle, nullptr, 4, &token), DECODELAB_ERR_INVALID_ARGUMENT,
               {"logits is NULL"});
  expect_error(decodelab_chain_probs(chain.handle, logits, 4, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"probs is NULL"});
  expect_error(decodelab_chain_probs(chain.handle, nullptr, 4, probs), DECODELAB_ERR_INVALID_ARGUMENT,
               {"logits is NULL"});
  expect_error(decodelab_chain_sample(chain.handle, logits, 4, 0, 0, 0, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"token is NULL"});
  expect_error(decodelab_chain_sample(nullptr, logits, 4, 0, 0, 0, &token), DECODELAB_ERR_INVALID_ARGUMENT,
               {"chain is NULL"});
  expect_error(decodelab_chain_accept(nullptr, 1), DECODELAB_ERR_INVALID_ARGUMENT, {"chain is NULL"});
  expect_error(decodelab_chain_reset(nullptr), DECODELAB_ERR_INVALID_ARGUMENT, {"chain is NULL"});
  expect_error(decodelab_philox_uniforms(1, 2, 3, nullptr, 4), DECODELAB_ERR_INVALID_ARGUMENT, {"out is NULL"});
  expect_error(decodelab_kseq_rho(logits, logits, 4, 2, nullptr), DECODELAB_ERR_INVALID_ARGUMENT, {"rho is NULL"});
  expect_error(decodelab_kseq_rho(nullptr, logits, 4, 2, &d), DECODELAB_ERR_INVALID_ARGUMENT, {"p is NULL"});
  expect_error(decodelab_kseq_rho(logits, nullptr, 4, 2, &d), DECODELAB_ERR_INVALID_ARGUMENT, {"q is NULL"});
  expect_error(decodelab_residual(logits, logits, 4, nullptr, &d), DECODELAB_ERR_INVALID_ARGUMENT, {"out is NULL"});
  expect_error(decodelab_component_count(DECODELAB_KIND_SAMPLER, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"count is NULL"});
  expect_error(decodelab_component_get(DECODELAB_KIND_SAMPLER, 0, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"out is NULL"});
  expect_error(decodelab_component_find(DECODELAB_KIND_SAMPLER, nullptr, &n), DECODELAB_ERR_INVALID_ARGUMENT,
               {"name is NULL"});
  expect_error(decodelab_component_find(DECODELAB_KIND_SAMPLER, "top_k", nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"index is NULL"});
  expect_error(decodelab_component_param(DECODELAB_KIND_SAMPLER, 0, 0, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"out is NULL"});
  decodelab_chain_free(nullptr);  // allowed
}

TEST(CapiErrors, BadLogitsLeaveTheArrayUntouched) {
  Chain chain("top_k(k=2),temperature(t=0.5)");
  int32_t selected = 123;
  std::vector<float> nan_logits{1.0f, std::nanf(""), 2.0f};
  expect_error(decodelab_chain_apply(chain.handle, nan_logits.data(), 3, &selected), DECODELAB_ERR_NUMERIC,
               {"NaN", "1"});
  EXPECT_EQ(nan_logits[0], 1.0f);
  EXPECT_EQ(nan_logits[2], 2.0f);
  EXPECT_EQ(selected, 123);
  std::vector<float> pos_inf{1.0f, kInf};
  expect_error(decodelab_chain_apply(chain.handle, pos_inf.data(), 2, &selected), DECODELAB_ERR_NUMERIC, {"inf"});
  std::vector<float> all_excluded{-kInf, -kInf};
  expect_error(decodelab_chain_apply(chain.handle, all_excluded.data(), 2, &selected), DECODELAB_ERR_NUMERIC, {"-inf"});
  std::vector<float> ok{1.0f, 2.0f};
  expect_error(decodelab_chain_apply(chain.handle, ok.data(), 0, &selected), DECODELAB_ERR_INVALID_ARGUMENT,
               {"n_vocab is 0"});
  expect_error(decodelab_chain_apply(chain.handle, ok.data(), size_t(INT32_MAX) + 1, &selected),
               DECODELAB_ERR_INVALID_ARGUMENT, {"n_vocab", "INT32_MAX"});
  EXPECT_EQ(ok[0], 1.0f);
  std::vector<float> probs(2, -1.0f);
  expect_error(decodelab_chain_probs(chain.handle, nan_logits.data(), 3, probs.data()), DECODELAB_ERR_NUMERIC,
               {"decodelab_chain_probs"});
  EXPECT_EQ(probs[0], -1.0f);
  int32_t token = 77;
  expect_error(decodelab_chain_sample(chain.handle, all_excluded.data(), 2, 1, 0, 0, &token), DECODELAB_ERR_NUMERIC,
               {"decodelab_chain_sample"});
  EXPECT_EQ(token, 77);
  expect_error(decodelab_chain_accept(chain.handle, -1), DECODELAB_ERR_INVALID_ARGUMENT, {"token = -1"});
}

TEST(CapiErrors, TopWWithGeometryNeedsAModel) {
  Chain chain("top_w(gamma=0.6)");
  std::vector<float> logits{1.0f, 2.0f, 3.0f};
  expect_error(decodelab_chain_apply(chain.handle, logits.data(), 3, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"top_w", "gamma"});
}

TEST(CapiErrors, DescribeBufferTooSmall) {
  Chain chain("top_k(k=2)");
  size_t length = 0;
  ASSERT_EQ(decodelab_chain_describe(chain.handle, nullptr, 0, &length), DECODELAB_OK);
  EXPECT_EQ(length, std::string("top_k(k=2)").size());
  std::vector<char> buf(length, 'x');
  size_t untouched = 999;
  expect_error(decodelab_chain_describe(chain.handle, buf.data(), length, &untouched), DECODELAB_ERR_INVALID_ARGUMENT,
               {"10 bytes", "NUL"});
  EXPECT_EQ(untouched, 999u);
  EXPECT_EQ(buf[0], 'x');
}

TEST(CapiErrors, VerifyArguments) {
  const std::vector<float> p{0.5f, 0.25f, 0.25f}, q{0.2f, 0.3f, 0.5f};
  const int32_t cands[2] = {1, 2};
  const double u[2] = {0.5, 0.5};
  decodelab_verify_result r{-9, -9};
  const auto verify = [&](decodelab_verify_rule rule, const float* pp, const float* qq, size_t n, const int32_t* c,
                          size_t k, const double* au, double ru,
                          double rho) { return decodelab_verify(rule, pp, qq, n, c, k, au, ru, rho, &r); };
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, nullptr, q.data(), 3, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"decodelab_verify", "p is NULL"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), nullptr, 3, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"q is NULL"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 3, nullptr, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"candidates is NULL"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 3, cands, 2, nullptr, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"accept_u is NULL"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 0, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"n_vocab is 0"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 2, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"candidates[1] = 2", "[0, 2)"});
  const int32_t negative[1] = {-4};
  expect_error(verify(DECODELAB_VERIFY_RRS_WOR, p.data(), q.data(), 3, negative, 1, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"candidates[0] = -4"});
  const double bad_u[2] = {0.5, 0.0};
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 3, cands, 2, bad_u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"accept_u[1]", "(0, 1]"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 3, cands, 2, u, 1.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"residual_u"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 3, cands, 2, u, std::nan(""), 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"residual_u"});
  expect_error(verify(DECODELAB_VERIFY_KSEQ, p.data(), q.data(), 3, cands, 2, u, 0.5, 0.5),
               DECODELAB_ERR_INVALID_ARGUMENT, {"rho", "K-SEQ"});
  expect_error(verify(decodelab_verify_rule(17), p.data(), q.data(), 3, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"rule = 17"});
  const std::vector<float> negative_p{0.5f, -0.1f, 0.6f}, nan_q{0.5f, std::nanf(""), 0.5f};
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, negative_p.data(), q.data(), 3, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"p[1]", ">= 0"});
  expect_error(verify(DECODELAB_VERIFY_RRS_IID, p.data(), nan_q.data(), 3, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_INVALID_ARGUMENT, {"q[1]", "finite"});
  const std::vector<float> no_mass{0.0f, 0.0f, 0.0f};
  expect_error(verify(DECODELAB_VERIFY_TARGET_ONLY, no_mass.data(), nullptr, 3, cands, 2, u, 0.5, 1),
               DECODELAB_ERR_NUMERIC, {"decodelab_verify"});
  EXPECT_EQ(r.accepted, -9);  // never written on failure
  expect_error(decodelab_verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 3, cands, 2, u, 0.5, 1, nullptr),
               DECODELAB_ERR_INVALID_ARGUMENT, {"out is NULL"});
  // target_only reads no q: NULL is fine there.
  EXPECT_EQ(verify(DECODELAB_VERIFY_TARGET_ONLY, p.data(), nullptr, 3, cands, 2, u, 0.5, 1), DECODELAB_OK)
      << decodelab_last_error();
  // No candidates: a draw from p, and candidates / accept_u may be NULL.
  EXPECT_EQ(verify(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), 3, nullptr, 0, nullptr, 0.6, 1), DECODELAB_OK);
  EXPECT_EQ(r.accepted, -1);
  EXPECT_EQ(r.token, 1);  // inverse CDF of (0.5, 0.25, 0.25) at 0.6

  expect_error(decodelab_verify_seeded(DECODELAB_VERIFY_KSEQ, p.data(), q.data(), 3, cands, 2, 0.9, 1, 2, &r),
               DECODELAB_ERR_INVALID_ARGUMENT, {"decodelab_verify_seeded", "rho"});
  double rho = 0.0;
  expect_error(decodelab_kseq_rho(p.data(), q.data(), 3, 0, &rho), DECODELAB_ERR_INVALID_ARGUMENT, {"k = 0"});
  float out[3] = {-1, -1, -1};
  expect_error(decodelab_residual(negative_p.data(), q.data(), 3, out, nullptr), DECODELAB_ERR_INVALID_ARGUMENT,
               {"decodelab_residual", "p[1]"});
  EXPECT_EQ(out[0], -1.0f);
}

TEST(CapiErrors, CatalogueIndices) {
  size_t count = 0;
  ASSERT_EQ(decodelab_component_count(DECODELAB_KIND_SAMPLER, &count), DECODELAB_OK);
  decodelab_component_info info{};
  expect_error(decodelab_component_get(DECODELAB_KIND_SAMPLER, count, &info), DECODELAB_ERR_NOT_FOUND,
               {"past the last"});
  EXPECT_EQ(info.name, nullptr);
  size_t index = 0;
  expect_error(decodelab_component_find(DECODELAB_KIND_DECODER, "warp_drive", &index), DECODELAB_ERR_NOT_FOUND,
               {"decoder 'warp_drive'", "sample"});
  expect_error(decodelab_component_count(decodelab_kind(5), &count), DECODELAB_ERR_INVALID_ARGUMENT, {"kind = 5"});
  ASSERT_EQ(decodelab_component_find(DECODELAB_KIND_SAMPLER, "greedy", &index), DECODELAB_OK);
  decodelab_param_info param{};
  expect_error(decodelab_component_param(DECODELAB_KIND_SAMPLER, index, 0, &param), DECODELAB_ERR_NOT_FOUND,
               {"greedy", "0 parameters"});
}

// The message is per thread: another thread's failure does not replace this thread's.
TEST(CapiErrors, LastErrorIsThreadLocal) {
  decodelab_chain* out = nullptr;
  ASSERT_EQ(decodelab_chain_create("mystery", &out), DECODELAB_ERR_NOT_FOUND);
  std::string other;
  std::thread t([&] {
    EXPECT_STREQ(decodelab_last_error(), "");
    decodelab_chain_reset(nullptr);
    other = decodelab_last_error();
  });
  t.join();
  EXPECT_NE(other.find("decodelab_chain_reset"), std::string::npos);
  EXPECT_NE(std::string(decodelab_last_error()).find("mystery"), std::string::npos);
}

}  // namespace
