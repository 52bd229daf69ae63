/* llama_sampler_i over a decodelab chain: see decodelab_llama_sampler.h.
 *
 * llama.cpp hands a sampler the candidates that earlier samplers left (ids with logits, in any
 * order, possibly fewer than the vocabulary) as a llama_token_data_array, and its samplers rewrite
 * that array in place. decodelab_token_data and decodelab_candidates have the layouts of
 * llama_token_data and llama_token_data_array, field for field (checked below), so apply() hands
 * llama.cpp's own array to decodelab_chain_apply_candidates: the chain truncates, rescales and
 * sorts it in place, and sets size, selected and sorted as llama.cpp's samplers do. Nothing is
 * copied per token. (The array is only ever accessed through decodelab's types inside
 * libdecodelab, a separate shared library, so the two struct types never alias within one
 * compiled function.) */
#include "decodelab_llama_sampler.h"

#include <stddef.h>
#include <stdlib.h>

_Static_assert(sizeof(llama_token_data) == sizeof(decodelab_token_data) &&
                   offsetof(llama_token_data, id) == offsetof(decodelab_token_data, id) &&
                   offsetof(llama_token_data, logit) == offsetof(decodelab_token_data, logit) &&
                   offsetof(llama_token_data, p) == offsetof(decodelab_token_data, p),
               "llama_token_data and decodelab_token_data must have the same layout");

typedef struct dl_state {
  decodelab_chain* chain;
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
  decodelab_candidates c;
  c.data = (decodelab_token_data*)(void*)cur_p->data;
  c.size = cur_p->size;
  c.selected = cur_p->selected;
  c.sorted = cur_p->sorted;
  /* On an error (decodelab_last_error() says which) llama.cpp's array keeps its size and
   * selection: llama_sampler_i's apply has no way to report it, and aborting the host is worse. */
  if (decodelab_chain_apply_candidates(s->chain, &c) != DECODELAB_OK) return;
  cur_p->size = c.size;
  cur_p->selected = c.selected;
  cur_p->sorted = c.sorted;
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
