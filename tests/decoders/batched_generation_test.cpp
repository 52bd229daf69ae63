// Batched generation (core/batching_model.hpp): every decoder emits the same tokens,
// log-probabilities, origins, steps and model-call counts whether it runs alone on a model or
// through a GatheringModel whose forward passes are merged with those of other generations running
// other decoders at the same time; cancelling one member of a batch changes nothing for the others;
// one member's bad call fails only that member; a lone member never waits for a gather window.
// On analytic models and (when present) on SmolLM2, bit for bit.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/batching_model.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/params.hpp"
#include "decodelab/table_model.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

struct Case {
  std::string decoder;
  uint64_t seed;
  int max_tokens;
};

// Every decoder (the golden cases' settings): sampling, greedy, speculative chains and trees,
// prompt lookup, branching, particles, constrained decoding.
const std::vector<Case> kAnalyticCases = {
    {"sample", 1, 24},
    {"sample(temperature=0.7,top_k=8)", 2, 24},
    {"sample(top_p=0.9,min_p=0.02)", 3, 24},
    {"greedy", 0, 24},
    {"sd(L=4)", 5, 24},
    {"sd(L=3,temperature=0)", 6, 24},
    {"spectr(k=3,L=3)", 7, 24},
    {"specinfer(k=3,L=3)", 8, 24},
    {"dyspec(budget=12,width=3)", 10, 24},
    {"ngram(L=4,n=2)", 11, 24},
    {"cntp(max_trials=4,trials=constant)", 14, 24},
    {"smc(particles=4)", 15, 16},
    {"smc(particles=6,block=2,mh_steps=1,alpha=2)", 16, 16},
    {"smc(particles=4,lookahead=2,alpha=3)", 17, 12},
    {"awrs(constraint=regex(pattern=( [abc])+))", 18, 12},
    {"masking(constraint=regex(pattern=( [abc])+))", 19, 12},
};

std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

// The run as one line: tokens with origin, exact logprob and step, then the counts.
std::string run_case(const Case& c, const ModelSet& models, std::span<const TokenId> prompt,
                     const std::atomic<bool>* cancel = nullptr, std::shared_ptr<TokenSink> sink = nullptr) {
  auto [name, given] = parse_spec(c.decoder);
  auto decoder = make_decoder(name, given, &models);
  DecodeOptions options;
  options.seed = c.seed;
  options.max_new_tokens = c.max_tokens;
  options.cancel = cancel;
  TokenStream stream(prompt);
  if (sink) stream.set_sink(sink);
  const Stats stats = decoder->generate(models, options, stream);
  std::ostringstream line;
  line << c.decoder << " seed=" << c.seed << " |";
  for (std::size_t i = prompt.size(); i < stream.size(); ++i) {
    const TokenRecord& r = stream.at(i);
    line << ' ' << r.id << ':' << int(r.origin) << ':' << hex(r.logprob) << ':' << r.step;
  }
  line << " | steps=" << stats.steps << " target_calls=" << stats.target_calls << " draft_calls=" << stats.draft_calls
       << " target_nodes=" << stats.target_nodes << " draft_nodes=" << stats.draft_nodes
       << " proposed=" << stats.tokens_proposed << " accepted=" << stats.tokens_accepted
       << " stop=" << stats.stop_reason;
  return line.str();
}

// A window long enough that members running at once really share forward passes on a busy
// machine (the leader stops waiting as soon as every member has queued).
GatherPolicy merging_policy() {
  GatherPolicy p;
  p.min_window = std::chrono::milliseconds(5);
  p.max_window = std::chrono::milliseconds(50);
  return p;
}

// Runs every case at once, each on its own thread through GatheringModels on shared gatherers.
std::vector<std::string> run_batched(const std::vector<Case>& cases, const std::shared_ptr<ForwardGatherer>& target,
                                     const std::shared_ptr<ForwardGatherer>& draft, std::span<const TokenId> prompt) {
  std::vector<std::string> lines(cases.size());
  std::vector<std::string> errors(cases.size());
  std::barrier start(std::ptrdiff_t(cases.size()));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    threads.emplace_back([&, i] {
      GatheringModel t(target), d(draft);
      ModelSet models{{"target", &t}, {"draft", &d}};
      start.arrive_and_wait();
      try {
        lines[i] = run_case(cases[i], models, prompt);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(errors[i], "") << cases[i].decoder;
  return lines;
}

void expect_merged(const ForwardGatherer& g, const char* what) {
  const GatherStats s = g.stats();
  int64_t merged = 0;
  for (const auto& [size, passes] : s.batch_sizes) {
    if (size > 1) merged += passes;
  }
  EXPECT_GT(merged, 0) << what << ": no forward pass merged two generations' calls";
  EXPECT_LT(s.forward_passes, s.calls) << what;
}

TEST(BatchedGeneration, EveryDecoderOnAnalyticModelsEqualsItsLoneRun) {
  auto target = TableModel::random(26, 2, 41, 1.5, /*eos=*/-1);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.25, 5);
  const std::vector<TokenId> prompt = {0, 1, 2, 0, 1};
  std::vector<std::string> alone;
  {
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    for (const auto& c : kAnalyticCases) alone.push_back(run_case(c, models, prompt));
  }
  auto gt = std::make_shared<ForwardGatherer>(target, merging_policy());
  auto gd = std::make_shared<ForwardGatherer>(draft, merging_policy());
  const auto batched = run_batched(kAnalyticCases, gt, gd, prompt);
  for (std::size_t i = 0; i < alone.size(); ++i) EXPECT_EQ(alone[i], batched[i]);
  expect_merged(*gt, "target");
  expect_merged(*gd, "draft");
  EXPECT_EQ(gt->members(), 0);
}

TEST(BatchedGeneration, CancellingOneMemberLeavesTheOthersUnchanged) {
  auto target = TableModel::random(26, 2, 41, 1.5, /*eos=*/-1);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.25, 5);
  const std::vector<TokenId> prompt = {0, 1, 2, 0, 1};
  const std::vector<Case> others = {
      {"sample", 1, 32}, {"sd(L=4)", 5, 32}, {"smc(particles=4)", 15, 16}, {"greedy", 0, 32}};
  const Case victim{"sample(temperature=0.9)", 77, 200};
  std::vector<std::string> alone;
  std::string victim_alone;
  {
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    for (const auto& c : others) alone.push_back(run_case(c, models, prompt));
    victim_alone = run_case(victim, models, prompt);
  }
  auto gt = std::make_shared<ForwardGatherer>(target, merging_policy());
  auto gd = std::make_shared<ForwardGatherer>(draft, merging_policy());
  std::vector<std::string> lines(others.size());
  std::string victim_line;
  std::atomic<bool> cancel{false};
  std::barrier start(std::ptrdiff_t(others.size() + 1));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < others.size(); ++i) {
    threads.emplace_back([&, i] {
      GatheringModel t(gt), d(gd);
      ModelSet models{{"target", &t}, {"draft", &d}};
      start.arrive_and_wait();
      lines[i] = run_case(others[i], models, prompt);
    });
  }
  threads.emplace_back([&] {
    GatheringModel t(gt);
    ModelSet models{{"target", &t}};
    // Cancelled from inside the batch, after its fifth token.
    auto sink = std::make_shared<CallbackSink>([&](std::size_t index, const TokenRecord&) {
      if (index >= prompt.size() + 4) cancel = true;
    });
    start.arrive_and_wait();
    victim_line = run_case(victim, models, prompt, &cancel, sink);
  });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < others.size(); ++i) EXPECT_EQ(alone[i], lines[i]);
  EXPECT_NE(victim_line.find("stop=cancelled"), std::string::npos) << victim_line;
  // What the victim emitted before the cancel is what it emits alone.
  const std::string tokens = victim_line.substr(0, victim_line.find(" | steps"));
  EXPECT_EQ(victim_alone.rfind(tokens, 0), 0u) << victim_line << "\n" << victim_alone;
  expect_merged(*gt, "target");
}

TEST(BatchedGeneration, AMembersBadCallFailsOnlyThatMember) {
  auto target = TableModel::random(26, 2, 41, 1.5, /*eos=*/-1);
  auto gather = std::make_shared<ForwardGatherer>(target, merging_policy());
  const std::vector<TokenId> prompt = {0, 1, 2};
  std::vector<float> good_logits, reference;
  std::string bad_error;
  {
    const SeqId s = target->new_sequence();
    auto next = target->append(s, prompt);
    reference.assign(next.begin(), next.end());
    target->free_sequence(s);
  }
  std::barrier start(2);
  std::thread good([&] {
    GatheringModel m(gather);
    const SeqId s = m.new_sequence();
    start.arrive_and_wait();
    auto next = m.append(s, prompt);
    good_logits.assign(next.begin(), next.end());
    m.free_sequence(s);
  });
  std::thread bad([&] {
    GatheringModel m(gather);
    const SeqId s = m.new_sequence();
    start.arrive_and_wait();
    const std::vector<TokenId> out_of_range = {0, 99};
    try {
      m.append(s, out_of_range);
    } catch (const Error& e) {
      bad_error = e.what();
    }
    m.free_sequence(s);
  });
  good.join();
  bad.join();
  EXPECT_EQ(good_logits, reference);
  EXPECT_NE(bad_error.find("outside the vocabulary"), std::string::npos) << bad_error;
}

// A KV budget that holds one prompt but not two: whichever call comes second (merged into the same
// forward pass or not) is refused alone with resource_exhausted, and the other gets its logits.
TEST(BatchedGeneration, AMemberPastTheKvBudgetFailsAlone) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  std::shared_ptr<LanguageModel> model = load_model("gguf(path=" + path + ",threads=1)");
  const std::vector<TokenId> prompt = model->tokenize("The capital of France is", false);
  std::vector<float> reference;
  {
    const SeqId s = model->new_sequence();
    auto next = model->append(s, prompt);
    reference.assign(next.begin(), next.end());
    model->free_sequence(s);
  }
  model->set_kv_budget(prompt.size() * model->kv_bytes_per_token() * 3 / 2);
  auto gather = std::make_shared<ForwardGatherer>(model, merging_policy());
  std::barrier start(2);
  std::vector<float> logits[2];
  std::string errors[2];
  auto member = [&](int i) {
    GatheringModel m(gather);
    const SeqId s = m.new_sequence();
    start.arrive_and_wait();
    try {
      auto next = m.append(s, prompt);
      logits[i].assign(next.begin(), next.end());
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::resource_exhausted);
      errors[i] = e.what();
    }
    start.arrive_and_wait();  // both have tried before either lets go of its rows
    m.free_sequence(s);
  };
  std::thread a(member, 0), b(member, 1);
  a.join();
  b.join();
  const int failed = int(!errors[0].empty()) + int(!errors[1].empty());
  ASSERT_EQ(failed, 1) << errors[0] << " | " << errors[1];
  const int ok = errors[0].empty() ? 0 : 1;
  EXPECT_EQ(logits[ok], reference);
  EXPECT_NE(errors[1 - ok].find("KV budget"), std::string::npos) << errors[1 - ok];
  EXPECT_EQ(model->kv_bytes_in_use(), 0u);
}

TEST(BatchedGeneration, ALoneMemberNeverWaitsForTheWindow) {
  auto target = TableModel::random(26, 2, 41, 1.5, /*eos=*/-1);
  GatherPolicy slow;
  slow.min_window = std::chrono::seconds(10);  // a leader that waited for it would take 10 s a step
  slow.max_window = std::chrono::seconds(10);
  auto gather = std::make_shared<ForwardGatherer>(target, slow);
  GatheringModel m(gather);
  const auto t0 = std::chrono::steady_clock::now();
  ModelSet models{{"target", &m}};
  const std::string line = run_case({"sample", 3, 16}, models, std::vector<TokenId>{0, 1, 2});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ModelSet direct{{"target", target.get()}};
  EXPECT_EQ(line, run_case({"sample", 3, 16}, direct, std::vector<TokenId>{0, 1, 2}));
  EXPECT_EQ(gather->stats().batch_sizes.size(), 1u);  // every pass held its one call
}

// The GGUF forward pass is batch-invariant: a generation's logits do not depend on which other
// trees share its forward pass (each matmul row, norm and attention head is computed per node),
// so decoders on SmolLM2 emit the same tokens and log-probabilities, bit for bit, batched or not.
TEST(BatchedGeneration, DecodersOnSmolLM2EqualTheirLoneRuns) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  std::shared_ptr<LanguageModel> target = load_model("gguf(path=" + path + ")");
  std::shared_ptr<LanguageModel> draft = load_model("gguf(path=" + path + ",layers=24)");
  const std::vector<TokenId> prompt =
      target->tokenize("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.", false);
  const std::vector<Case> cases = {
      {"greedy", 0, 10},
      {"sample(temperature=0.8,top_p=0.95)", 1, 10},
      {"sd(L=4,temperature=0.8)", 2, 10},
      {"specinfer(k=2,L=3,replacement=false)", 4, 8},
      {"ngram(L=4,temperature=0)", 6, 10},
      {"cntp(max_trials=3)", 7, 6},
      {"smc(particles=3)", 8, 6},
  };
  std::vector<std::string> alone;
  {
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    for (const auto& c : cases) alone.push_back(run_case(c, models, prompt));
  }
  auto gt = std::make_shared<ForwardGatherer>(target, merging_policy());
  auto gd = std::make_shared<ForwardGatherer>(draft, merging_policy());
  const auto batched = run_batched(cases, gt, gd, prompt);
  for (std::size_t i = 0; i < alone.size(); ++i) EXPECT_EQ(alone[i], batched[i]);
  expect_merged(*gt, "target");
}

// The GGUF forward pass itself, below the decoders: a tree's logits are the same bit for bit when
// it is evaluated alone and when other sequences' trees (a longer prefill, a branching tree) share
// its forward pass, in either precision.
TEST(BatchedGeneration, GgufLogitsDoNotDependOnTheOtherTreesInTheBatch) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  for (const char* precision : {"q8", "f32"}) {
    auto model = load_model("gguf(path=" + path + ",precision=" + precision + ")");
    const std::vector<TokenId> a = model->tokenize("The capital of France is", false);
    const std::vector<TokenId> b = model->tokenize("def add(x, y):\n    return", false);
    // a's prompt, then a small tree after it (two children of the prefix, one grandchild).
    const std::vector<TreeNode> tree = {{a[1], -1}, {a[2], -1}, {a[3], 0}};
    auto run = [&](bool with_others) {
      std::vector<Matrix> rows;
      const SeqId s = model->new_sequence();
      const SeqId o = model->new_sequence();
      std::vector<TreeEval> prefill{{s, chain_nodes(a)}};
      if (with_others) prefill.push_back({o, chain_nodes(b)});
      std::vector<Matrix> out;
      model->evaluate(prefill, out);
      rows.push_back(out[0]);
      std::vector<int32_t> all(a.size());
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = int32_t(i);
      model->commit(s, all);
      std::vector<TreeEval> step{{s, tree}};
      if (with_others) {
        std::vector<int32_t> path_b(b.size());
        for (std::size_t i = 0; i < path_b.size(); ++i) path_b[i] = int32_t(i);
        model->commit(o, path_b);
        step.insert(step.begin(), TreeEval{o, {{b[0], -1}, {b[1], 0}, {b[2], 0}, {b[3], 2}}});
      }
      model->evaluate(step, out);
      rows.push_back(out[with_others ? 1 : 0]);
      model->free_sequence(s);
      model->free_sequence(o);
      return rows;
    };
    const auto alone = run(false), batched = run(true);
    ASSERT_EQ(alone.size(), 2u);
    for (std::size_t i = 0; i < alone.size(); ++i) {
      ASSERT_GT(alone[i].rows, 0);
      EXPECT_EQ(alone[i].data, batched[i].data) << precision << ", evaluation " << i;
    }
  }
}

}  // namespace
}  // namespace decodelab
