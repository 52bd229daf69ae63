// A C++20 engine using the installed C++ library (decodelab::cpp, <decodelab/*.hpp>): typed sampler
// factories on its own logits, a registered decoder by name over a table model, and the errors it
// gets for bad input. Exits non-zero, saying why, when anything is off.
#include <decodelab/builtins.hpp>
#include <decodelab/decoder.hpp>
#include <decodelab/error.hpp>
#include <decodelab/sampler_factories.hpp>
#include <decodelab/table_model.hpp>
#include <decodelab/token_stream.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer_library: %s\n", what);
    ++failures;
  }
}

std::vector<decodelab::TokenId> run_spectr(uint64_t seed) {
  using namespace decodelab;
  auto target = TableModel::random(/*vocab_size=*/16, /*order=*/2, /*seed=*/1, /*sharpness=*/2.0);
  auto draft = TableModel::derive_draft(*target, /*temper=*/1.3, /*noise=*/0.5, /*noise_seed=*/2);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  auto decoder = make_decoder("spectr", {}, &models);
  DecodeOptions options;
  options.seed = seed;
  options.max_new_tokens = 12;
  options.stop_at_eos = false;
  TokenStream stream(std::vector<TokenId>{0});
  decoder->generate(models, options, stream);
  return stream.generated_tokens();
}
}  // namespace

int main() {
  using namespace decodelab;
  register_builtins();

  // top_k(2) keeps the two largest logits (tokens 1 and 3); dist then picks one of them.
  const std::vector<float> logits{0.0f, 3.0f, 1.0f, 2.0f};
  for (uint64_t seed = 0; seed < 16; ++seed) {
    SamplerChain chain;
    chain.add(make_top_k(2)).add(make_temperature(0.7)).add(make_dist(seed));
    Candidates c = Candidates::from_logits(logits);
    chain.apply(c);
    const TokenId t = c.selected_token();
    check(c.data.size() == 2 && (t == 1 || t == 3), "top_k(2) -> dist picked outside the kept set");
  }

  // A decoder by name, over an analytic target and draft: the same seed gives the same tokens.
  const auto a = run_spectr(5), b = run_spectr(5);
  check(a.size() == 12, "spectr did not generate 12 tokens");
  check(a == b, "spectr with one seed gave two different outputs");

  // Bad input is an Error naming what was wrong, not a crash.
  try {
    make_top_p(1.5);
    check(false, "make_top_p(1.5) was accepted");
  } catch (const Error& e) {
    check(std::string(e.what()).find("top_p") != std::string::npos, "make_top_p(1.5)'s error does not name top_p");
  }
  try {
    make_decoder("no_such_decoder", {});
    check(false, "an unknown decoder was accepted");
  } catch (const Error& e) {
    check(e.code() == ErrorCode::not_found, "an unknown decoder is not ErrorCode::not_found");
  }

  if (failures == 0) std::printf("consumer_library: ok (spectr gave %zu tokens)\n", a.size());
  return failures == 0 ? 0 : 1;
}
