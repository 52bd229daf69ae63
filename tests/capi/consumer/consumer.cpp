// The C++ consumer of the installed library (tests/capi/install_consumer.sh): a model of its own
// behind decodelab_model_callbacks (a C++ class, the callbacks captureless lambdas) serves as the
// draft of decodelab's `sd` decoder over a target decodelab loads, and the run must equal the run
// over the loaded draft it forwards to. Exits 0 and prints the tokens when everything works.
#include <decodelab/decodelab.h>

#include <cstdio>
#include <map>
#include <vector>

namespace {

// Forwards every call to a loaded model; keeps its own sequence ids.
struct Forwarding {
  decodelab_model* inner;
  std::map<int32_t, int32_t> ids;

  static Forwarding& of(void* user) { return *static_cast<Forwarding*>(user); }

  decodelab_model_callbacks callbacks() {
    decodelab_model_info info{};
    decodelab_model_get_info(inner, &info);
    decodelab_model_callbacks c{};
    c.struct_size = sizeof c;
    c.user = this;
    c.name = "c++ forwarding draft";
    c.vocab_size = info.vocab_size;
    c.eos = info.eos;
    c.new_sequence = [](void* u, int32_t seq) { return decodelab_model_new_sequence(of(u).inner, &of(u).ids[seq]); };
    c.fork = [](void* u, int32_t parent, int32_t child) {
      return decodelab_model_fork(of(u).inner, of(u).ids.at(parent), &of(u).ids[child]);
    };
    c.free_sequence = [](void* u, int32_t seq) {
      const decodelab_status s = decodelab_model_free_sequence(of(u).inner, of(u).ids.at(seq));
      of(u).ids.erase(seq);
      return s;
    };
    c.evaluate = [](void* u, int32_t seq, const int32_t* tokens, const int32_t* parents, size_t n, float* logits) {
      return decodelab_model_evaluate(of(u).inner, of(u).ids.at(seq), tokens, parents, n, logits);
    };
    c.commit = [](void* u, int32_t seq, const int32_t* path, size_t n) {
      return decodelab_model_commit(of(u).inner, of(u).ids.at(seq), path, n);
    };
    c.rollback = [](void* u, int32_t seq, size_t length) {
      return decodelab_model_rollback(of(u).inner, of(u).ids.at(seq), length);
    };
    return c;
  }
};

int fail(const char* what) {
  std::fprintf(stderr, "consumer_cpp: %s: %s\n", what, decodelab_last_error());
  return 1;
}

}  // namespace

int main() {
  decodelab_model *target = nullptr, *draft = nullptr, *mine = nullptr;
  if (decodelab_model_load("table(vocab=24,order=2,seed=3)", nullptr, &target) != DECODELAB_OK) return fail("load");
  if (decodelab_model_load("draft(temper=1.3,noise=0.25)", target, &draft) != DECODELAB_OK) return fail("draft");
  Forwarding forwarding{draft, {}};
  const decodelab_model_callbacks c = forwarding.callbacks();
  if (decodelab_model_from_callbacks(&c, &mine) != DECODELAB_OK) return fail("callbacks");

  std::vector<int32_t> prompt(1, 0);
  if (size_t n = 0; decodelab_model_tokenize(target, "a b c", 0, nullptr, 0, &n) == DECODELAB_OK) {
    prompt.resize(n);
    if (decodelab_model_tokenize(target, "a b c", 0, prompt.data(), n, &n) != DECODELAB_OK) return fail("tokenize");
  } else {
    return fail("tokenize");
  }
  decodelab_generate_options options;
  decodelab_generate_options_init(&options);
  options.seed = 7;
  options.max_new_tokens = 16;
  std::vector<int32_t> native(16), through(16);
  decodelab_generate_stats a{}, b{};
  if (decodelab_generate("sd(L=3)", target, draft, prompt.data(), prompt.size(), &options, native.data(), 16, &a) !=
      DECODELAB_OK)
    return fail("generate (loaded draft)");
  if (decodelab_generate("sd(L=3)", target, mine, prompt.data(), prompt.size(), &options, through.data(), 16, &b) !=
      DECODELAB_OK)
    return fail("generate (callback draft)");
  decodelab_model_free(mine);
  decodelab_model_free(draft);
  decodelab_model_free(target);
  std::printf("consumer_cpp: decodelab %s, sd accepted %lld of %lld, tokens:", decodelab_version(),
              static_cast<long long>(b.tokens_accepted), static_cast<long long>(b.tokens_proposed));
  for (int32_t t : through) std::printf(" %d", t);
  std::printf("\n");
  return native == through && a.n_tokens == 16 && forwarding.ids.empty() ? 0 : 1;
}
