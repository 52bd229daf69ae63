/* The C API used from C: this file is compiled as C99 (not C++) with -pedantic and linked
 * against libdecodelab.so only, as an engine written in C would. It walks the header's example,
 * the catalogue, sampling, verification, models (loaded and behind callbacks) with decoders run
 * over them, and a few error paths, and prints
 * "capi_c99: N passed, M failed". */
#include <decodelab/decodelab.h>
#include <math.h>
#include <stddef.h>
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


/* ---- Models and decoders over them ---- */

/* A callback model that forwards every call to a model decodelab loaded: the callbacks' sequence
 * ids map to the inner model's. Generating over two of these must give exactly the tokens that
 * generating over the inner models gives. fail_at_evaluate makes evaluate fail after that many
 * calls (-1: never). */
#define MAX_SEQS 64
typedef struct forwarding_model {
  decodelab_model* inner;
  int32_t seqs[MAX_SEQS]; /* callback id -> inner id */
  int calls;
  int fail_at_evaluate;
  int destroyed;
} forwarding_model;

static decodelab_status fw_new_sequence(void* user, int32_t seq) {
  forwarding_model* m = (forwarding_model*)user;
  m->calls++;
  if (seq < 0 || seq >= MAX_SEQS) return DECODELAB_ERR_OUT_OF_MEMORY;
  return decodelab_model_new_sequence(m->inner, &m->seqs[seq]);
}
static decodelab_status fw_fork(void* user, int32_t parent, int32_t child) {
  forwarding_model* m = (forwarding_model*)user;
  m->calls++;
  if (child < 0 || child >= MAX_SEQS) return DECODELAB_ERR_OUT_OF_MEMORY;
  return decodelab_model_fork(m->inner, m->seqs[parent], &m->seqs[child]);
}
static decodelab_status fw_free_sequence(void* user, int32_t seq) {
  forwarding_model* m = (forwarding_model*)user;
  m->calls++;
  return decodelab_model_free_sequence(m->inner, m->seqs[seq]);
}
static decodelab_status fw_evaluate(void* user, int32_t seq, const int32_t* tokens, const int32_t* parents,
                                    size_t n_nodes, float* logits) {
  forwarding_model* m = (forwarding_model*)user;
  m->calls++;
  if (m->fail_at_evaluate >= 0 && m->fail_at_evaluate-- == 0) return DECODELAB_ERR_NUMERIC;
  return decodelab_model_evaluate(m->inner, m->seqs[seq], tokens, parents, n_nodes, logits);
}
static decodelab_status fw_commit(void* user, int32_t seq, const int32_t* path, size_t n_path) {
  forwarding_model* m = (forwarding_model*)user;
  m->calls++;
  return decodelab_model_commit(m->inner, m->seqs[seq], path, n_path);
}
static decodelab_status fw_rollback(void* user, int32_t seq, size_t new_length) {
  forwarding_model* m = (forwarding_model*)user;
  m->calls++;
  return decodelab_model_rollback(m->inner, m->seqs[seq], new_length);
}
static void fw_destroy(void* user) { ((forwarding_model*)user)->destroyed++; }

static decodelab_model* forwarding(forwarding_model* state, decodelab_model* inner, const char* name) {
  decodelab_model_callbacks c;
  decodelab_model_info info;
  decodelab_model* model = NULL;
  memset(state, 0, sizeof *state);
  state->inner = inner;
  state->fail_at_evaluate = -1;
  CHECK_OK(decodelab_model_get_info(inner, &info));
  memset(&c, 0, sizeof c);
  c.struct_size = sizeof c;
  c.user = state;
  c.name = name;
  c.vocab_size = info.vocab_size;
  c.eos = info.eos;
  c.context_length = info.context_length;
  c.new_sequence = fw_new_sequence;
  c.fork = fw_fork;
  c.free_sequence = fw_free_sequence;
  c.evaluate = fw_evaluate;
  c.commit = fw_commit;
  c.rollback = fw_rollback;
  c.destroy = fw_destroy;
  CHECK_OK(decodelab_model_from_callbacks(&c, &model));
  return model;
}

static void test_models_and_generate(void) {
  decodelab_model *target = NULL, *draft = NULL, *cb_target, *cb_draft;
  forwarding_model ft, fd;
  decodelab_model_info info;
  decodelab_generate_options options;
  decodelab_generate_stats stats, cb_stats;
  int32_t prompt[3] = {1, 2, 3}, native[24], through[24];
  float logits[3 * 16];
  int32_t seq = -1, child = -1, tree_tokens[3] = {4, 5, 6}, tree_parents[3] = {-1, 0, -1}, path[2] = {0, 1};
  size_t length = 0, i;

  CHECK_OK(decodelab_model_load("table(vocab=16,order=2,seed=5,sharpness=1.5)", NULL, &target));
  CHECK_OK(decodelab_model_load("draft(temper=1.4,noise=0.3,seed=9)", target, &draft));
  CHECK_OK(decodelab_model_get_info(target, &info));
  CHECK(info.vocab_size == 16 && strstr(info.name, "table(") == info.name);

  /* The model operations themselves: prefill, a tree, a commit, a fork, a rollback. */
  CHECK_OK(decodelab_model_new_sequence(target, &seq));
  CHECK_OK(decodelab_model_evaluate(target, seq, prompt, (const int32_t[]){-1, 0, 1}, 3, logits));
  CHECK_OK(decodelab_model_commit(target, seq, (const int32_t[]){0, 1, 2}, 3));
  CHECK_OK(decodelab_model_evaluate(target, seq, tree_tokens, tree_parents, 3, logits));
  CHECK_OK(decodelab_model_commit(target, seq, path, 2));
  CHECK_OK(decodelab_model_length(target, seq, &length));
  CHECK(length == 5);
  CHECK_OK(decodelab_model_fork(target, seq, &child));
  CHECK_OK(decodelab_model_rollback(target, child, 2));
  CHECK_OK(decodelab_model_length(target, child, &length));
  CHECK(length == 2);
  CHECK_ERROR(decodelab_model_commit(target, seq, (const int32_t[]){1}, 1), DECODELAB_ERR_INVALID_ARGUMENT, "");
  CHECK_ERROR(decodelab_model_rollback(target, seq, 9), DECODELAB_ERR_INVALID_ARGUMENT, "");
  CHECK_ERROR(decodelab_model_evaluate(target, seq, (const int32_t[]){16}, (const int32_t[]){-1}, 1, logits),
              DECODELAB_ERR_INVALID_ARGUMENT, "16");
  CHECK_OK(decodelab_model_free_sequence(target, seq));
  CHECK_OK(decodelab_model_free_sequence(target, child));

  /* spectr over the loaded pair, then over callback models forwarding to the same pair. */
  decodelab_generate_options_init(&options);
  options.seed = 11;
  options.max_new_tokens = 24;
  CHECK_OK(decodelab_generate("spectr(k=3,L=2,temperature=0.8)", target, draft, prompt, 3, &options, native, 24,
                              &stats));
  CHECK(stats.n_tokens == 24 && strcmp(stats.stop_reason, "max_tokens") == 0 && stats.tokens_proposed > 0);
  cb_target = forwarding(&ft, target, "forwarding target");
  cb_draft = forwarding(&fd, draft, "forwarding draft");
  CHECK_OK(decodelab_generate("spectr(k=3,L=2,temperature=0.8)", cb_target, cb_draft, prompt, 3, &options, through,
                              24, &cb_stats));
  CHECK(cb_stats.n_tokens == stats.n_tokens && cb_stats.target_calls == stats.target_calls &&
        cb_stats.tokens_accepted == stats.tokens_accepted);
  for (i = 0; i < 24; ++i) CHECK(through[i] == native[i]);
  CHECK(ft.calls > 0 && fd.calls > 0);

  /* A failing callback is DECODELAB_ERR_CALLBACK naming the model and the callback. */
  ft.fail_at_evaluate = 2;
  CHECK_ERROR(decodelab_generate("spectr(k=3,L=2)", cb_target, cb_draft, prompt, 3, &options, through, 24, NULL),
              DECODELAB_ERR_CALLBACK, "'forwarding target': callback evaluate(");
  CHECK(strstr(decodelab_last_error(), "numeric") != NULL);
  /* ... and the models stay usable. */
  CHECK_OK(decodelab_generate("sample", cb_target, NULL, prompt, 3, &options, through, 24, NULL));

  /* Bad arguments. */
  CHECK_ERROR(decodelab_generate("no_such_decoder", target, NULL, prompt, 3, &options, native, 24, NULL),
              DECODELAB_ERR_NOT_FOUND, "no_such_decoder");
  CHECK_ERROR(decodelab_generate("spectr", target, NULL, prompt, 3, &options, native, 24, NULL),
              DECODELAB_ERR_INVALID_ARGUMENT, "draft");
  CHECK_ERROR(decodelab_generate("sample", target, NULL, prompt, 3, &options, native, 8, NULL),
              DECODELAB_ERR_INVALID_ARGUMENT, "capacity");
  CHECK_ERROR(decodelab_model_load("table(file=/nonexistent/t.json)", NULL, &draft), DECODELAB_ERR_NOT_FOUND,
              "t.json");

  /* Further roles: smc's reward model. Without it the decoder says which role is missing. */
  {
    const char* names[1] = {"reward_model"};
    decodelab_model* models[1];
    const char* bad_names[1] = {"draft"};
    models[0] = draft;
    CHECK_ERROR(decodelab_generate("smc(particles=4,reward_model_weight=0.5)", target, NULL, prompt, 3, &options,
                                   native, 24, NULL),
                DECODELAB_ERR_NOT_FOUND, "reward_model");
    options.role_names = names;
    options.role_models = models;
    options.n_roles = 1;
    CHECK_OK(decodelab_generate("smc(particles=4,reward_model_weight=0.5)", target, NULL, prompt, 3, &options, native,
                                24, &stats));
    CHECK(stats.n_tokens == 24);
    options.role_names = bad_names;
    CHECK_ERROR(decodelab_generate("sample", target, NULL, prompt, 3, &options, native, 24, NULL),
                DECODELAB_ERR_INVALID_ARGUMENT, "role_names[0]");
    options.role_names = names;
    models[0] = NULL;
    CHECK_ERROR(decodelab_generate("sample", target, NULL, prompt, 3, &options, native, 24, NULL),
                DECODELAB_ERR_INVALID_ARGUMENT, "role_models[0]");
    /* A 0.2 caller's options end before role_names: accepted, with no further roles. */
    options.struct_size = offsetof(decodelab_generate_options, role_names);
    CHECK_OK(decodelab_generate("sample", target, NULL, prompt, 3, &options, native, 24, NULL));
    options.struct_size = offsetof(decodelab_generate_options, n_stop_tokens);
    CHECK_ERROR(decodelab_generate("sample", target, NULL, prompt, 3, &options, native, 24, NULL),
                DECODELAB_ERR_INVALID_ARGUMENT, "struct_size");
    decodelab_generate_options_init(&options);
  }

  decodelab_model_free(cb_target);
  decodelab_model_free(cb_draft);
  CHECK(ft.destroyed == 1 && fd.destroyed == 1);
  decodelab_model_free(draft);
  decodelab_model_free(target);
}

static void test_callback_model_errors(void) {
  decodelab_model_callbacks c;
  decodelab_model* model = NULL;
  forwarding_model state;
  memset(&c, 0, sizeof c);
  memset(&state, 0, sizeof state);
  c.struct_size = sizeof c;
  c.user = &state;
  c.vocab_size = 8;
  c.destroy = fw_destroy;
  CHECK_ERROR(decodelab_model_from_callbacks(&c, &model), DECODELAB_ERR_INVALID_ARGUMENT, "new_sequence is NULL");
  CHECK(model == NULL && state.destroyed == 1);
  c.struct_size = 8;
  CHECK_ERROR(decodelab_model_from_callbacks(&c, &model), DECODELAB_ERR_INVALID_ARGUMENT, "struct_size");
  CHECK(state.destroyed == 2);
  CHECK(strcmp(decodelab_status_name(DECODELAB_ERR_CALLBACK), "callback") == 0);
}

int main(void) {
  test_version();
  test_chain_in_place();
  test_probs_and_sampling();
  test_verify();
  test_catalogue();
  test_errors();
  test_models_and_generate();
  test_callback_model_errors();
  printf("capi_c99: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
