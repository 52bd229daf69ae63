#pragma once
// Models from spec strings, as the CLI, the daemon and experiments name them:
//
//   table(vocab=32,order=2,seed=1,sharpness=2)   analytic model with generated distributions
//   table(file=tables/target.json)               explicit next-token tables (core/table_file.hpp)
//   draft(temper=1.5,noise=0.2,seed=3)           analytic draft derived from an analytic target
//   gguf(path=model.gguf,backend=cpu)            a real model (registered by the runtime)
//
// Loaders register by name like decoders, with typed parameters.

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "decodelab/language_model.hpp"
#include "decodelab/params.hpp"

namespace decodelab {

struct ModelLoader {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
  // `target` is the already-loaded target when loading a draft (nullptr otherwise).
  std::function<std::shared_ptr<LanguageModel>(const Params&, const LanguageModel* target)> load;
  // Optional: checks the parameters as given, before defaults are filled in (parameters that
  // exclude each other). Throws Error(invalid_argument).
  std::function<void(const ParamMap& given)> check_given = nullptr;
};

class ModelLoaderRegistry {
 public:
  static ModelLoaderRegistry& instance();
  void add(ModelLoader loader);
  const ModelLoader& get(const std::string& name) const;
  std::vector<const ModelLoader*> list() const;

 private:
  std::map<std::string, ModelLoader> loaders_;
};

struct RegisterModelLoader {
  explicit RegisterModelLoader(ModelLoader loader) { ModelLoaderRegistry::instance().add(std::move(loader)); }
};

// Parses and loads a model spec. A bare path ending in ".gguf" means gguf(path=...).
std::shared_ptr<LanguageModel> load_model(const std::string& spec, const LanguageModel* target = nullptr);

}  // namespace decodelab
