/* The consumer of the installed library (tests/capi/install_consumer.sh): one chain applied, one
 * draft verified. Exits 0 and prints what it decided when everything works. */
#include <decodelab/decodelab.h>
#include <stdio.h>

int main(void) {
  float logits[4] = {0.5f, 2.0f, 1.0f, -1.0f};
  const float p[2] = {0.7f, 0.3f};
  const float q[2] = {0.5f, 0.5f};
  const int32_t draft = 1;
  const double u = 0.5; /* 0.5 * q(1) = 0.25 <= p(1) = 0.3: accepted */
  decodelab_chain* chain = NULL;
  decodelab_verify_result result;
  int32_t selected = -1;
  if (decodelab_abi_version() != DECODELAB_ABI_VERSION) {
    fprintf(stderr, "consumer: header ABI %d, library ABI %u\n", DECODELAB_ABI_VERSION, decodelab_abi_version());
    return 1;
  }
  if (decodelab_chain_create("top_k(k=2),greedy", &chain) != DECODELAB_OK ||
      decodelab_chain_apply(chain, logits, 4, &selected) != DECODELAB_OK) {
    fprintf(stderr, "consumer: %s\n", decodelab_last_error());
    return 1;
  }
  decodelab_chain_free(chain);
  if (decodelab_verify(DECODELAB_VERIFY_RRS_IID, p, q, 2, &draft, 1, &u, 0.5, 1.0, &result) != DECODELAB_OK) {
    fprintf(stderr, "consumer: %s\n", decodelab_last_error());
    return 1;
  }
  printf("consumer: decodelab %s, greedy picked %d, draft %d accepted at %d\n", decodelab_version(), selected, draft,
         result.accepted);
  return selected == 1 && result.accepted == 0 ? 0 : 1;
}
