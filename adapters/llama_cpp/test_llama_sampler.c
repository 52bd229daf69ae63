/* The decodelab llama.cpp sampler inside a llama.cpp sampler chain, on a candidate array (no model
 * needed): what it keeps, the logits it leaves, the token a terminal sampler selects, clone and
 * reset, and a bad spec. Built and run by the opt-in adapters suite (scripts/test adapters).
 * Prints "test_llama_sampler: N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "decodelab_llama_sampler.h"

static int passed = 0, failed = 0;
#define CHECK(cond)                                                  \
  do {                                                               \
    if (cond) {                                                      \
      ++passed;                                                      \
    } else {                                                         \
      ++failed;                                                      \
      fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); \
    }                                                                \
  } while (0)

#define N 10

static void fill(llama_token_data* data, llama_token_data_array* arr) {
  static const float logits[N] = {0.1f, 2.0f, -1.0f, 3.0f, 0.5f, 2.5f, -2.0f, 1.0f, 0.0f, 1.5f};
  int i;
  for (i = 0; i < N; ++i) {
    /* ids in reverse order: the sampler must not assume candidates sorted by id */
    data[i].id = N - 1 - i;
    data[i].logit = logits[N - 1 - i];
    data[i].p = 0.0f;
  }
  arr->data = data;
  arr->size = N;
  arr->selected = -1;
  arr->sorted = false;
}

int main(void) {
  llama_token_data data[N];
  llama_token_data_array arr;
  float dense[N] = {0.1f, 2.0f, -1.0f, 3.0f, 0.5f, 2.5f, -2.0f, 1.0f, 0.0f, 1.5f};
  decodelab_chain* reference = NULL;
  struct llama_sampler* chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
  struct llama_sampler* dl = decodelab_llama_sampler_init("top_k(k=3),temperature(t=0.5)");
  struct llama_sampler* copy;
  size_t i;
  CHECK(dl != NULL);
  CHECK(strcmp(llama_sampler_name(dl), "decodelab") == 0);
  llama_sampler_chain_add(chain, dl);

  /* Truncation and temperature: the same as decodelab_chain_apply on the dense logits. */
  fill(data, &arr);
  llama_sampler_apply(chain, &arr);
  CHECK(decodelab_chain_create("top_k(k=3),temperature(t=0.5)", &reference) == DECODELAB_OK);
  CHECK(decodelab_chain_apply(reference, dense, N, NULL) == DECODELAB_OK);
  CHECK(arr.size == 3);
  for (i = 0; i < arr.size; ++i) CHECK(arr.data[i].logit == dense[arr.data[i].id] && isfinite(arr.data[i].logit));
  CHECK(arr.selected == -1);
  /* In place: llama.cpp's own array, reordered, and `sorted` telling the truth. */
  CHECK(arr.data == data);
  if (arr.sorted)
    for (i = 1; i < arr.size; ++i) CHECK(arr.data[i - 1].logit >= arr.data[i].logit);

  /* After one of llama.cpp's own samplers, on the subset it left. */
  {
    struct llama_sampler* mixed = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(mixed, llama_sampler_init_top_k(5));
    llama_sampler_chain_add(mixed, decodelab_llama_sampler_init("top_k(k=2)"));
    fill(data, &arr);
    llama_sampler_apply(mixed, &arr);
    CHECK(arr.size == 2);
    for (i = 0; i < arr.size; ++i) CHECK(arr.data[i].id == 3 || arr.data[i].id == 5); /* logits 3.0 and 2.5 */
    llama_sampler_free(mixed);
  }

  copy = llama_sampler_clone(dl);
  CHECK(copy != NULL);
  fill(data, &arr);
  llama_sampler_apply(copy, &arr);
  CHECK(arr.size == 3);
  llama_sampler_reset(copy);
  llama_sampler_free(copy);

  /* A terminal sampler's token becomes `selected`. */
  {
    struct llama_sampler* greedy = decodelab_llama_sampler_init("greedy");
    fill(data, &arr);
    llama_sampler_apply(greedy, &arr);
    CHECK(arr.selected >= 0 && arr.data[arr.selected].id == 3);
    llama_sampler_accept(greedy, 3);
    llama_sampler_free(greedy);
  }

  CHECK(decodelab_llama_sampler_init("top_k(k=") == NULL);
  CHECK(strstr(decodelab_last_error(), "(") != NULL);

  decodelab_chain_free(reference);
  llama_sampler_free(chain);
  printf("test_llama_sampler: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
