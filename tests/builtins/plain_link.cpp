// Linked plainly (tests/builtins/CMakeLists.txt): after register_builtins() every decoder,
// sampler, constraint and model loader is there and works, and no registering file lacks its
// anchor (so a new one cannot be forgotten).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "decodelab/builtins.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/sampler.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab {
namespace {

TEST(RegisterBuiltins, EveryComponentIsRegisteredWithoutWholeArchiveLinking) {
  register_builtins();
  register_builtins();  // idempotent
  for (const char* name : {"sample", "greedy", "sd", "spectr", "specinfer", "dyspec", "ngram", "block", "traversal",
                           "smc", "cntp", "awrs", "masking"})
    EXPECT_TRUE(DecoderRegistry::instance().contains(name)) << "decoder " << name;
  for (const char* name : {"top_k", "top_p", "min_p", "typical", "temperature", "greedy", "dist", "top_w"})
    EXPECT_TRUE(SamplerRegistry::instance().contains(name)) << "sampler " << name;
  EXPECT_EQ(ConstraintRegistry::instance().list().size(), 3u);
  std::vector<std::string> loaders;
  for (const ModelLoader* l : ModelLoaderRegistry::instance().list()) loaders.push_back(l->name);
  for (const char* name : {"table", "draft", "gguf"})
    EXPECT_NE(std::find(loaders.begin(), loaders.end(), name), loaders.end()) << "model loader " << name;

  // And they run: spectr over the example tables.
  const std::string tables = std::string(DECODELAB_SOURCE_DIR) + "/examples/tables/";
  auto target = load_model("table(file=" + tables + "target.json)");
  auto draft = load_model("table(file=" + tables + "draft.json)");
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  auto decoder = make_decoder("spectr", {}, &models);
  DecodeOptions options;
  options.max_new_tokens = 8;
  const std::vector<TokenId> prompt{0};
  TokenStream stream(prompt);
  decoder->generate(models, options, stream);
  EXPECT_EQ(stream.generated_size(), 8u);
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(RegisterBuiltins, EveryRegisteringFileHasAnAnchorThatRegisterBuiltinsNames) {
  namespace fs = std::filesystem;
  const fs::path root = DECODELAB_SOURCE_DIR;
  const std::string listed = read(root / "core" / "builtins" / "builtins.cpp");
  const std::regex registration(R"(const Register(Decoder|Sampler|ModelLoader|TreeSpeculation|Constraint) )");
  int files = 0;
  for (const char* folder : {"core", "samplers", "decoders"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      if (entry.path().extension() != ".cpp") continue;
      const std::string text = read(entry.path());
      if (!std::regex_search(text, registration)) continue;
      ++files;
      std::string id = fs::relative(entry.path(), root).replace_extension().string();
      std::replace(id.begin(), id.end(), '/', '_');
      SCOPED_TRACE(entry.path().string());
      EXPECT_NE(text.find("DECODELAB_BUILTIN(" + id + ")"), std::string::npos) << "no DECODELAB_BUILTIN(" << id << ")";
      EXPECT_NE(listed.find("DECODELAB_BUILTIN_REF(" + id + ")"), std::string::npos)
          << "core/builtins/builtins.cpp does not name " << id;
    }
  }
  EXPECT_GE(files, 25);
}

}  // namespace
}  // namespace decodelab
