/* The C API used from C: this file is compiled as C99 (not C++) with -pedantic and linked
 * against libdecodelab.so only, as an engine written in C would. It walks the header's example,
 * the catalogue, sampling, verification and a few error paths, and prints
 * "capi_c99: N passed, M failed". */
#include <decodelab/decodelab.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int passed = 0;
static int failed = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      ++passed;                                                                \
    } else {                                                                   \
      ++failed;                                                                \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

/* Checks a call's status; on a failure prints the library's message. */
#define CHECK_OK(call)                                                                                          \
  do {                                                                                                          \
    decodelab_status status_ = (call);                                                                          \
    if (status_ == DECODELAB_OK) {                                                                              \
      ++passed;                                                                                                 \
    } else {                                                                                                    \
      ++failed;                                                                                                 \
      fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call, decodelab_status_name(status_), \
              decodelab_last_error());                                                                          \
    }                                                                                                           \
  } while (0)

/* Checks that a call fails with `want` and that the message contains `word`. */
static void check_error(decodelab_status got, decodelab_status want, const char* word, int line) {
  const char* message = decodelab_last_error();
  if (got == want && strstr(message, word) != NULL) {
    ++passed;
  } else {
    ++failed;
    fprintf(stderr, "%s:%d: expected %s mentioning '%s', got %s: %s\n", __FILE__, line, decodelab_status_name(want),
            word, decodelab_status_name(got), message);
  }
}
#define CHECK_ERROR(call, want, word) check_error((call), (want), (word), __LINE__)

static void test_version(void) {
  CHECK(decodelab_abi_version() == DECODELAB_ABI_VERSION);
  CHECK(strlen(decodelab_version()) >= 5);
  CHECK(strcmp(decodelab_status_name(DECODELAB_ERR_NUMERIC), "numeric") == 0);
}

static void test_chain_in_place(void) {
  float logits[6] = {1.0f, 3.0f, 2.0f, 3.0f, -INFINITY, 0.5f};
  decodelab_chain* chain = NULL;
  int32_t selected = 99;
  size_t length = 0;
  char name[128];
  CHECK_OK(decodelab_chain_create("top_k(k=3),temperature(t=0.5)", &chain));
  CHECK_OK(decodelab_chain_length(chain, &length));
  CHECK(length == 2);
  CHECK_OK(decodelab_chain_describe(chain, name, sizeof name, &length));
  CHECK(strncmp(name, "top_k(k=3) -> temperature(", 26) == 0);
  CHECK(strlen(name) == length);
  CHECK_OK(decodelab_chain_apply(chain, logits, 6, &selected));
  /* The three largest kept, divided by t = 0.5; the rest excluded; nothing selected. */
  CHECK(selected == -1);
  CHECK(logits[1] == 6.0f && logits[3] == 6.0f && logits[2] == 4.0f);
  CHECK(logits[0] == -INFINITY && logits[4] == -INFINITY && logits[5] == -INFINITY);
  decodelab_chain_free(chain);

  /* A terminal sampler selects; ties go to the lowest id. */
  {
    float tie[4] = {0.0f, 2.0f, 2.0f, 1.0f};
    CHECK_OK(decodelab_chain_create("greedy", &chain));
    CHECK_OK(decodelab_chain_apply(chain, tie, 4, &selected));
    CHECK(selected == 1);
    decodelab_chain_free(chain);
  }
}

static void test_probs_and_sampling(void) {
  float logits[5] = {0.0f, 1.0f, 2.0f, 3.0f, 4.0f};
  float probs[5];
  double sum = 0.0;
  int i;
  int32_t first = -1, token = -1;
  decodelab_chain* chain = NULL;
  decodelab_chain* copy = NULL;
  CHECK_OK(decodelab_chain_from_params("temperature=1,top_p=0.9", &chain));
  CHECK_OK(decodelab_chain_probs(chain, logits, 5, probs));
  for (i = 0; i < 5; ++i) sum += probs[i];
  CHECK(fabs(sum - 1.0) < 1e-6);
  CHECK(probs[0] == 0.0f && probs[4] > probs[3]);
  /* The same (seed, stream, step) gives the same token; a clone samples alike. */
  CHECK_OK(decodelab_chain_sample(chain, logits, 5, 7, DECODELAB_STREAM_SAMPLE, 3, &first));
  CHECK_OK(decodelab_chain_clone(chain, &copy));
  CHECK_OK(decodelab_chain_sample(copy, logits, 5, 7, DECODELAB_STREAM_SAMPLE, 3, &token));
  CHECK(token == first && probs[first] > 0.0f);
  CHECK_OK(decodelab_chain_accept(chain, first));
  CHECK_OK(decodelab_chain_reset(chain));
  decodelab_chain_free(copy);
  decodelab_chain_free(chain);
  {
    double u[4];
    CHECK_OK(decodelab_philox_uniforms(1, decodelab_stream(DECODELAB_STREAM_ACCEPT, 2), 10, u, 4));
    for (i = 0; i < 4; ++i) CHECK(u[i] > 0.0 && u[i] < 1.0);
    CHECK(u[0] != u[1]);
  }
}

/* Standard speculative sampling on a 3-token vocabulary. */
static void test_verify(void) {
  const float p[3] = {0.6f, 0.3f, 0.1f};
  const float q[3] = {0.2f, 0.2f, 0.6f};
  const int32_t candidate = 2;
  double u = 0.1; /* 0.1 * q(2) = 0.06 <= p(2) = 0.1: accepted */
  decodelab_verify_result result;
  float residual[3];
  double mass = 0.0, rho = 0.0;
  CHECK_OK(decodelab_verify(DECODELAB_VERIFY_RRS_IID, p, q, 3, &candidate, 1, &u, 0.5, 1.0, &result));
  CHECK(result.accepted == 0 && result.token == 2);
  u = 0.9; /* 0.54 > 0.1: rejected; the residual norm((p - q)_+) = (0.4, 0.1, 0) / 0.5 at 0.5 is token 0 */
  CHECK_OK(decodelab_verify(DECODELAB_VERIFY_RRS_IID, p, q, 3, &candidate, 1, &u, 0.5, 1.0, &result));
  CHECK(result.accepted == -1 && result.token == 0);
  CHECK_OK(decodelab_residual(p, q, 3, residual, &mass));
  CHECK(fabs(mass - 0.5) < 1e-6 && fabs(residual[0] - 0.8) < 1e-6 && residual[2] == 0.0f);
  CHECK_OK(decodelab_kseq_rho(p, q, 3, 2, &rho));
  CHECK(rho >= 1.0 && rho <= 2.0);
  CHECK_OK(decodelab_verify_seeded(DECODELAB_VERIFY_KSEQ, p, q, 3, &candidate, 1, rho, 5, 0, &result));
  CHECK(result.token >= 0 && result.token < 3);
}

static void test_catalogue(void) {
  size_t count = 0, i, j, index = 0;
  int saw_top_k = 0;
  decodelab_component_info info;
  decodelab_param_info param;
  CHECK_OK(decodelab_component_count(DECODELAB_KIND_SAMPLER, &count));
  CHECK(count >= 8);
  for (i = 0; i < count; ++i) {
    CHECK_OK(decodelab_component_get(DECODELAB_KIND_SAMPLER, i, &info));
    for (j = 0; j < info.n_params; ++j) {
      CHECK_OK(decodelab_component_param(DECODELAB_KIND_SAMPLER, i, j, &param));
      CHECK(strstr(param.description, param.name) == param.description);
    }
    if (strcmp(info.name, "top_k") == 0) saw_top_k = 1;
  }
  CHECK(saw_top_k);
  CHECK_OK(decodelab_component_find(DECODELAB_KIND_DECODER, "sd", &index));
  CHECK_OK(decodelab_component_get(DECODELAB_KIND_DECODER, index, &info));
  CHECK(strcmp(info.roles, "target,draft") == 0);
}

static void test_errors(void) {
  decodelab_chain* chain = NULL;
  float logits[2] = {NAN, 1.0f};
  CHECK_ERROR(decodelab_chain_create("top_k(k=40", &chain), DECODELAB_ERR_BAD_FORMAT, "'('");
  CHECK_ERROR(decodelab_chain_create("no_such_sampler", &chain), DECODELAB_ERR_NOT_FOUND, "no_such_sampler");
  CHECK(chain == NULL);
  CHECK_ERROR(decodelab_chain_apply(NULL, logits, 2, NULL), DECODELAB_ERR_INVALID_ARGUMENT, "chain is NULL");
  CHECK_OK(decodelab_chain_create("", &chain));
  CHECK_ERROR(decodelab_chain_apply(chain, logits, 2, NULL), DECODELAB_ERR_NUMERIC, "NaN");
  CHECK(isnan(logits[0]) && logits[1] == 1.0f);
  CHECK_ERROR(decodelab_chain_apply(chain, logits, 0, NULL), DECODELAB_ERR_INVALID_ARGUMENT, "n_vocab");
  decodelab_chain_free(chain);
}

int main(void) {
  test_version();
  test_chain_in_place();
  test_probs_and_sampling();
  test_verify();
  test_catalogue();
  test_errors();
  printf("capi_c99: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
