/* llama_sampler_i over a decodelab chain: see decodelab_llama_sampler.h.
 *
 * llama.cpp hands a sampler the candidates that earlier samplers left (ids with logits, in any
 * order, possibly fewer than the vocabulary). decodelab chains work on a dense logits array, so
 * apply() scatters the candidates into one (absent ids at -inf), runs the chain in place, and
 * gathers back: the candidates the chain dropped are removed (keeping the others' order, as
 * llama.cpp's own truncation samplers do), the kept ones take their processed logits, and a
 * token a terminal sampler (greedy, dist) picked becomes `selected`. */
#include "decodelab_llama_sampler.h"

#include <math.h>
#include <stdlib.h>

typedef struct dl_state {
  decodelab_chain* chain;
  float* dense; /* scratch, grown to the largest id seen + 1 */
  size_t capacity;
} dl_state;

static const char* dl_name(const struct llama_sampler* smpl) {
  (void)smpl;
  return "decodelab";
}

static void dl_accept(struct llama_sampler* smpl, llama_token token) {
  dl_state* s = (dl_state*)smpl->ctx;
  decodelab_chain_accept(s->chain, token);
}

static void dl_apply(struct llama_sampler* smpl, llama_token_data_array* cur_p) {
  dl_state* s = (dl_state*)smpl->ctx;
  size_t i, n_vocab = 0, kept = 0;
  int32_t selected = -1;
  for (i = 0; i < cur_p->size; ++i)
    if ((size_t)cur_p->data[i].id + 1 > n_vocab) n_vocab = (size_t)cur_p->data[i].id + 1;
  if (n_vocab == 0) return;
  if (n_vocab > s->capacity) {
    float* grown = (float*)realloc(s->dense, n_vocab * sizeof(float));
    if (!grown) return; /* leaves the candidates as they were rather than abort llama.cpp */
    s->dense = grown;
    s->capacity = n_vocab;
  }
  for (i = 0; i < n_vocab; ++i) s->dense[i] = -INFINITY;
  for (i = 0; i < cur_p->size; ++i) s->dense[cur_p->data[i].id] = cur_p->data[i].logit;
  if (decodelab_chain_apply(s->chain, s->dense, n_vocab, &selected) != DECODELAB_OK) return;
  cur_p->selected = -1;
  for (i = 0; i < cur_p->size; ++i) {
    const float logit = s->dense[cur_p->data[i].id];
    if (logit == -INFINITY && cur_p->data[i].id != selected) continue;
    cur_p->data[kept] = cur_p->data[i];
    cur_p->data[kept].logit = logit;
    if (cur_p->data[i].id == selected) cur_p->selected = (int64_t)kept;
    ++kept;
  }
  cur_p->size = kept;
}

static void dl_reset(struct llama_sampler* smpl) { decodelab_chain_reset(((dl_state*)smpl->ctx)->chain); }

static struct llama_sampler* dl_wrap(decodelab_chain* chain);

static struct llama_sampler* dl_clone(const struct llama_sampler* smpl) {
  decodelab_chain* copy = NULL;
  if (decodelab_chain_clone(((const dl_state*)smpl->ctx)->chain, &copy) != DECODELAB_OK) return NULL;
  return dl_wrap(copy);
}

static void dl_free(struct llama_sampler* smpl) {
  dl_state* s = (dl_state*)smpl->ctx;
  decodelab_chain_free(s->chain);
  free(s->dense);
  free(s);
}

static struct llama_sampler_i dl_interface; /* filled once, all other fields NULL */

static struct llama_sampler* dl_wrap(decodelab_chain* chain) {
  dl_state* s = (dl_state*)calloc(1, sizeof *s);
  if (!s) {
    decodelab_chain_free(chain);
    return NULL;
  }
  s->chain = chain;
  dl_interface.name = dl_name;
  dl_interface.accept = dl_accept;
  dl_interface.apply = dl_apply;
  dl_interface.reset = dl_reset;
  dl_interface.clone = dl_clone;
  dl_interface.free = dl_free;
  return llama_sampler_init(&dl_interface, s);
}

struct llama_sampler* decodelab_llama_sampler_init(const char* spec) {
  decodelab_chain* chain = NULL;
  if (decodelab_chain_create(spec, &chain) != DECODELAB_OK) return NULL;
  return dl_wrap(chain);
}
