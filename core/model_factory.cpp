#include "decodelab/model_factory.hpp"

#include "core/table_file.hpp"
#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "decodelab/table_model.hpp"

namespace decodelab {

ModelLoaderRegistry& ModelLoaderRegistry::instance() {
  static ModelLoaderRegistry registry;
  return registry;
}

void ModelLoaderRegistry::add(ModelLoader loader) {
  if (loaders_.count(loader.name)) fail(ErrorCode::internal, "model loader '" + loader.name + "' registered twice");
  std::string name = loader.name;
  loaders_.emplace(std::move(name), std::move(loader));
}

const ModelLoader& ModelLoaderRegistry::get(const std::string& name) const {
  auto it = loaders_.find(name);
  if (it == loaders_.end()) {
    std::string message = "unknown model kind '" + name + "'; known:";
    for (const auto& [n, l] : loaders_) message += " " + n;
    fail(ErrorCode::not_found, message);
  }
  return it->second;
}

std::vector<const ModelLoader*> ModelLoaderRegistry::list() const {
  std::vector<const ModelLoader*> out;
  for (const auto& [n, l] : loaders_) out.push_back(&l);
  return out;
}

std::shared_ptr<LanguageModel> load_model(const std::string& spec, const LanguageModel* target) {
  if (spec.size() > 5 && spec.ends_with(".gguf") && spec.find('(') == std::string::npos) {
    return load_model("gguf(path=" + spec + ")", target);
  }
  auto [name, given] = parse_spec(spec);
  const ModelLoader& loader = ModelLoaderRegistry::instance().get(name);
  if (loader.check_given) loader.check_given(given);
  return loader.load(resolve_params("model '" + name + "'", loader.params, given), target);
}

namespace {

const RegisterModelLoader reg_table({
    .name = "table",
    .doc = "Analytic model: next-token logits ~ sharpness * N(0,1), a deterministic function of the last `order` "
           "tokens; or, with file=, the explicit tables of a JSON file (docs/table-models.md).",
    .params = {ParamSpec::string("file", "", "JSON file of explicit next-token tables; excludes the other parameters"),
               ParamSpec::integer("vocab", 32, 2, 1 << 20, "vocabulary size"),
               ParamSpec::integer("order", 2, 0, 16, "context tokens the distribution depends on"),
               ParamSpec::integer("seed", 1, 0, 9.007199254740992e15, "seed of the generated distributions"),
               ParamSpec::real("sharpness", 2.0, 0.0, 100.0, "logit scale: 0 = uniform, larger = lower entropy"),
               ParamSpec::integer("eos", -1, -1, 1 << 20, "end-of-sequence token; -1 = none")},
    .load = [](const Params& p, const LanguageModel*) -> std::shared_ptr<LanguageModel> {
      if (!p.get_string("file").empty()) return load_table_file(p.get_string("file"));
      return TableModel::random(int(p.get_int("vocab")), int(p.get_int("order")), uint64_t(p.get_int("seed")),
                                p.get_real("sharpness"), TokenId(p.get_int("eos")));
    },
    .check_given =
        [](const ParamMap& given) {
          if (!given.count("file")) return;
          for (const auto& [name, value] : given) {
            if (name != "file")
              fail(ErrorCode::invalid_argument,
                   "model 'table': file= excludes " + name + "= (the file gives the vocabulary, order and eos)");
          }
        },
});

const RegisterModelLoader reg_draft({
    .name = "draft",
    .doc = "Analytic draft derived from an analytic target: q = (1-noise) softmax(logits_p / temper) + noise * r.",
    .params = {ParamSpec::real("temper", 1.0, 1e-3, 1e3, "temperature applied to the target's logits"),
               ParamSpec::real("noise", 0.2, 0.0, 1.0, "weight of a random distribution mixed in"),
               ParamSpec::integer("seed", 7, 0, 9.007199254740992e15, "seed of the random distribution"),
               ParamSpec::real("noise_sharpness", 1.0, 0.0, 100.0, "logit scale of the random distribution")},
    .load = [](const Params& p, const LanguageModel* target) -> std::shared_ptr<LanguageModel> {
      auto* table = dynamic_cast<const TableModel*>(target);
      if (!table)
        fail(ErrorCode::invalid_argument,
             "model 'draft(...)' derives from an analytic target; the target is not a table model");
      return TableModel::derive_draft(*table, p.get_real("temper"), p.get_real("noise"), uint64_t(p.get_int("seed")),
                                      p.get_real("noise_sharpness"));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(core_model_factory)
