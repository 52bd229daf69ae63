// decodelab_native.Model and generate(): models (loaded by decodelab, or a Python object's
// methods behind decodelab_model_from_callbacks) and any registered decoder over them.
//
// A Python model is any object with
//   vocab_size                          int (eos, context_length, name: optional)
//   new_sequence(seq)                   a new, empty sequence called seq
//   fork(parent, child)                 child starts with parent's committed tokens
//   free_sequence(seq)
//   evaluate(seq, tokens, parents)      int32 arrays of one tree (parents[i] = -1: child of the
//                                       committed prefix) -> float logits of shape (n, vocab_size)
//   commit(seq, path)                   keep nodes path (int32, root first) of the last tree
//   rollback(seq, length)               keep the first `length` committed tokens
// decodelab validates every call before the object sees it. An exception a method raises stops
// the operation, and the same exception is raised again from the call into decodelab that ran
// it (generate, or a Model method), never a crash. The GIL is released while a decoder runs and
// taken again for each callback.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings/python/status.hpp"
#include "decodelab/decodelab.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace decodelab_python {
namespace {

template <class T>
using In = nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

template <class T>
nb::ndarray<nb::numpy, T> to_numpy(std::vector<T>&& values, std::vector<std::size_t> shape) {
  auto* heap = new std::vector<T>(std::move(values));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(heap->data(), shape.size(), shape.data(), owner);
}

template <class T>
nb::object int32_array(const T* values, std::size_t n) {
  return nb::cast(to_numpy(std::vector<int32_t>(values, values + n), {n}));
}

// The Python object behind a callback model, and the first exception one of its methods raised
// during the current call into decodelab.
struct PythonModel {
  nb::object object;
  int32_t vocab_size = 0;
  std::optional<nb::python_error> error;

  // Runs one method with the GIL held; an exception becomes DECODELAB_ERR_CALLBACK and is kept
  // to be raised again once decodelab returns.
  template <class F>
  decodelab_status call(F&& body) noexcept {
    nb::gil_scoped_acquire gil;
    try {
      body();
      return DECODELAB_OK;
    } catch (nb::python_error& e) {
      if (!error) error.emplace(std::move(e));
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
      nb::python_error raised;
      if (!error) error.emplace(std::move(raised));
    } catch (...) {
      PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception in a model callback");
      nb::python_error raised;
      if (!error) error.emplace(std::move(raised));
    }
    return DECODELAB_ERR_CALLBACK;
  }
};

decodelab_status cb_new_sequence(void* user, int32_t seq) {
  auto* m = static_cast<PythonModel*>(user);
  return m->call([&] { m->object.attr("new_sequence")(seq); });
}

decodelab_status cb_fork(void* user, int32_t parent, int32_t child) {
  auto* m = static_cast<PythonModel*>(user);
  return m->call([&] { m->object.attr("fork")(parent, child); });
}

decodelab_status cb_free_sequence(void* user, int32_t seq) {
  auto* m = static_cast<PythonModel*>(user);
  return m->call([&] { m->object.attr("free_sequence")(seq); });
}

decodelab_status cb_evaluate(void* user, int32_t seq, const int32_t* tokens, const int32_t* parents, size_t n,
                             float* logits) {
  auto* m = static_cast<PythonModel*>(user);
  return m->call([&] {
    nb::object result = m->object.attr("evaluate")(seq, int32_array(tokens, n), int32_array(parents, n));
    // Any array-like of floats: numpy converts it (a copy only when it must).
    nb::object numpy = nb::module_::import_("numpy");
    nb::object array = numpy.attr("ascontiguousarray")(result, "dtype"_a = numpy.attr("float32"));
    auto view = nb::cast<nb::ndarray<const float, nb::c_contig, nb::device::cpu>>(array);
    const std::size_t vocab = std::size_t(m->vocab_size);
    if (view.ndim() != 2 || view.shape(0) != n || view.shape(1) != vocab) {
      std::string shape = "(";
      for (std::size_t d = 0; d < view.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(view.shape(d));
      shape += view.ndim() == 1 ? ",)" : ")";
      const std::string message = "evaluate returned logits of shape " + shape + ", expected (" + std::to_string(n) +
                                  ", " + std::to_string(vocab) + ")";
      PyErr_SetString(PyExc_ValueError, message.c_str());
      throw nb::python_error();
    }
    std::memcpy(logits, view.data(), n * vocab * sizeof(float));
  });
}

decodelab_status cb_commit(void* user, int32_t seq, const int32_t* path, size_t n) {
  auto* m = static_cast<PythonModel*>(user);
  return m->call([&] { m->object.attr("commit")(seq, int32_array(path, n)); });
}

decodelab_status cb_rollback(void* user, int32_t seq, size_t length) {
  auto* m = static_cast<PythonModel*>(user);
  return m->call([&] { m->object.attr("rollback")(seq, length); });
}

void cb_destroy(void* user) {
  nb::gil_scoped_acquire gil;
  delete static_cast<PythonModel*>(user);
}

class Model {
 public:
  Model(decodelab_model* handle, PythonModel* python) : handle_(handle), python_(python) {}
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model() { decodelab_model_free(handle_); }

  static Model* load(const std::string& spec, const Model* target) {
    decodelab_model* h = nullptr;
    check(decodelab_model_load(spec.c_str(), target ? target->handle_ : nullptr, &h));
    return new Model(h, nullptr);
  }

  static Model* from_python(nb::object object) {
    if (!nb::hasattr(object, "vocab_size")) throw nb::type_error("a Python model needs a vocab_size attribute");
    for (const char* method : {"new_sequence", "fork", "free_sequence", "evaluate", "commit", "rollback"}) {
      if (!nb::hasattr(object, method) || !PyCallable_Check(object.attr(method).ptr()))
        throw nb::type_error((std::string("a Python model needs a method ") + method + "()").c_str());
    }
    auto attr_int = [&](const char* name, int32_t fallback) {
      return nb::hasattr(object, name) ? nb::cast<int32_t>(object.attr(name)) : fallback;
    };
    const std::string name = nb::hasattr(object, "name")
                                 ? nb::cast<std::string>(nb::str(object.attr("name")))
                                 : nb::cast<std::string>(nb::str(object.type().attr("__name__")));
    auto* python = new PythonModel{object, attr_int("vocab_size", 0), std::nullopt};
    decodelab_model_callbacks c{};
    c.struct_size = sizeof c;
    c.user = python;
    c.name = name.c_str();
    c.vocab_size = python->vocab_size;
    c.eos = attr_int("eos", -1);
    c.context_length = attr_int("context_length", 0);
    c.new_sequence = cb_new_sequence;
    c.fork = cb_fork;
    c.free_sequence = cb_free_sequence;
    c.evaluate = cb_evaluate;
    c.commit = cb_commit;
    c.rollback = cb_rollback;
    c.destroy = cb_destroy;
    decodelab_model* h = nullptr;
    check(decodelab_model_from_callbacks(&c, &h));  // on failure destroy has freed `python`
    return new Model(h, python);
  }

  // A failed call: the Python model's own exception when one of its methods raised, else the
  // library's error as the matching Python exception.
  void raise(decodelab_status status) {
    if (python_ && python_->error) {
      nb::python_error error = std::move(*python_->error);
      python_->error.reset();
      throw error;
    }
    check(status);
  }
  void run(decodelab_status status) {
    if (status != DECODELAB_OK) raise(status);
  }
  bool has_error() const { return python_ && python_->error; }
  void clear_error() {
    if (python_) python_->error.reset();
  }

  decodelab_model_info info() const {
    decodelab_model_info i;
    check(decodelab_model_get_info(handle_, &i));
    return i;
  }

  nb::object tokenize(const std::string& text, bool add_special) const {
    std::size_t n = 0;
    check(decodelab_model_tokenize(handle_, text.c_str(), add_special, nullptr, 0, &n));
    std::vector<int32_t> tokens(n);
    check(decodelab_model_tokenize(handle_, text.c_str(), add_special, tokens.data(), n, &n));
    return nb::cast(to_numpy(std::move(tokens), {n}));
  }

  int32_t new_sequence() {
    clear_error();
    int32_t seq = -1;
    run(decodelab_model_new_sequence(handle_, &seq));
    return seq;
  }
  int32_t fork(int32_t seq) {
    clear_error();
    int32_t child = -1;
    run(decodelab_model_fork(handle_, seq, &child));
    return child;
  }
  void free_sequence(int32_t seq) {
    clear_error();
    run(decodelab_model_free_sequence(handle_, seq));
  }
  std::size_t length(int32_t seq) const {
    std::size_t n = 0;
    check(decodelab_model_length(handle_, seq, &n));
    return n;
  }
  nb::object evaluate(int32_t seq, In<int32_t> tokens, In<int32_t> parents) {
    if (tokens.shape(0) != parents.shape(0))
      throw nb::value_error(
          ("tokens has " + std::to_string(tokens.shape(0)) + " nodes, parents " + std::to_string(parents.shape(0)))
              .c_str());
    const std::size_t n = tokens.shape(0), vocab = std::size_t(info().vocab_size);
    std::vector<float> logits(n * vocab);
    clear_error();
    run(decodelab_model_evaluate(handle_, seq, tokens.data(), parents.data(), n, logits.data()));
    return nb::cast(to_numpy(std::move(logits), {n, vocab}));
  }
  void commit(int32_t seq, In<int32_t> path) {
    clear_error();
    run(decodelab_model_commit(handle_, seq, path.data(), path.shape(0)));
  }
  void rollback(int32_t seq, std::size_t length) {
    clear_error();
    run(decodelab_model_rollback(handle_, seq, length));
  }

  decodelab_model* handle() const { return handle_; }

 private:
  decodelab_model* handle_;
  PythonModel* python_;  // owned by the C model (destroy), nullptr for a loaded model
};

nb::tuple generate(const std::string& decoder, Model& target, In<int32_t> prompt, Model* draft, uint64_t seed,
                   int32_t max_new_tokens, bool stop_at_eos, std::vector<int32_t> stop_tokens,
                   std::map<std::string, Model*> roles) {
  decodelab_generate_options options;
  decodelab_generate_options_init(&options);
  options.seed = seed;
  options.max_new_tokens = max_new_tokens;
  options.stop_at_eos = stop_at_eos;
  options.stop_tokens = stop_tokens.data();
  options.n_stop_tokens = stop_tokens.size();
  // Every model the decoder may call, in the order their exceptions take precedence.
  std::vector<Model*> involved{&target};
  if (draft) involved.push_back(draft);
  std::vector<const char*> role_names;
  std::vector<decodelab_model*> role_models;
  for (const auto& [role, model] : roles) {
    if (!model) throw nb::value_error(("roles['" + role + "'] is None").c_str());
    role_names.push_back(role.c_str());
    role_models.push_back(model->handle());
    involved.push_back(model);
  }
  options.role_names = role_names.data();
  options.role_models = role_models.data();
  options.n_roles = role_names.size();
  std::vector<int32_t> tokens(std::size_t(std::max(max_new_tokens, 1)));
  decodelab_generate_stats stats;
  for (Model* m : involved) m->clear_error();
  decodelab_status status;
  {
    nb::gil_scoped_release release;
    status = decodelab_generate(decoder.c_str(), target.handle(), draft ? draft->handle() : nullptr, prompt.data(),
                                prompt.shape(0), &options, tokens.data(), tokens.size(), &stats);
  }
  if (status != DECODELAB_OK) {
    // The exception of whichever Python model raised (the target's first, then the draft's, then
    // the other roles'); the others' are dropped.
    Model* source = &target;
    for (Model* m : involved) {
      if (m->has_error()) {
        source = m;
        break;
      }
    }
    for (Model* m : involved)
      if (m != source) m->clear_error();
    source->raise(status);
  }
  tokens.resize(stats.n_tokens);
  nb::dict d;
  d["steps"] = stats.steps;
  d["target_calls"] = stats.target_calls;
  d["draft_calls"] = stats.draft_calls;
  d["tokens_proposed"] = stats.tokens_proposed;
  d["tokens_accepted"] = stats.tokens_accepted;
  d["stop_reason"] = std::string(stats.stop_reason);
  const std::size_t n = tokens.size();
  return nb::make_tuple(to_numpy(std::move(tokens), {n}), d);
}

}  // namespace

void bind_models(nb::module_& m) {
  nb::class_<Model>(m, "Model",
                    "A language model decoders run over: Model(spec) loads one (\"gguf(path=...)\", "
                    "\"table(file=...)\"), Model.from_python(obj) wraps a Python object's methods.")
      .def(nb::new_([](const std::string& spec, const Model* target) { return Model::load(spec, target); }), "spec"_a,
           "target"_a = nb::none(),
           "Loads a model from a spec string; target: the loaded target of a derived draft spec.")
      .def_static("from_python", &Model::from_python, "model"_a,
                  "Wraps a Python object with vocab_size, new_sequence, fork, free_sequence, evaluate, commit and "
                  "rollback (see the module's documentation).")
      .def_prop_ro("name", [](const Model& m) { return std::string(m.info().name); })
      .def_prop_ro("vocab_size", [](const Model& m) { return m.info().vocab_size; })
      .def_prop_ro("eos", [](const Model& m) { return m.info().eos; })
      .def_prop_ro("bos", [](const Model& m) { return m.info().bos; })
      .def_prop_ro("add_bos", [](const Model& m) { return m.info().add_bos != 0; })
      .def_prop_ro("context_length", [](const Model& m) { return m.info().context_length; })
      .def("tokenize", &Model::tokenize, "text"_a, "add_special"_a = false, "Token ids of text (int32 array).")
      .def("new_sequence", &Model::new_sequence, "A new, empty sequence (its id).")
      .def("fork", &Model::fork, "seq"_a, "A new sequence sharing seq's committed tokens.")
      .def("free_sequence", &Model::free_sequence, "seq"_a)
      .def("length", &Model::length, "seq"_a, "Committed tokens of seq.")
      .def("evaluate", &Model::evaluate, "seq"_a, "tokens"_a, "parents"_a,
           "Logits (float32, (n, vocab_size)) of a token tree off seq's committed prefix; parents[i] = -1 for a "
           "child of the prefix. The tree stays pending until commit().")
      .def("commit", &Model::commit, "seq"_a, "path"_a, "Keeps nodes `path` (root first) of the last tree.")
      .def("rollback", &Model::rollback, "seq"_a, "length"_a, "Keeps the first `length` committed tokens.");

  m.def("generate", &generate, "decoder"_a, "target"_a, "prompt"_a, "draft"_a = nb::none(), "seed"_a = 0,
        "max_new_tokens"_a = 64, "stop_at_eos"_a = true, "stop_tokens"_a = std::vector<int32_t>{},
        "roles"_a = std::map<std::string, Model*>{},
        "Runs a registered decoder (\"sample(temperature=0.7)\", \"spectr(k=4,L=3)\") over target (and draft, and "
        "models in further roles: roles={\"reward_model\": m} for smc) after prompt (int32 token ids). Returns "
        "(generated int32 tokens, stats dict). An exception a Python model raised is raised again here.");
}

}  // namespace decodelab_python
