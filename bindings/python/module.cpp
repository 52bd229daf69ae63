// decodelab_native._native: the C API (include/decodelab/decodelab.h) for Python on numpy arrays, with
// nanobind (models and decoders over them: models.cpp). Every call goes through libdecodelab.so, so Python sees exactly
// what a C engine sees; a failed status becomes a Python exception carrying the library's message:
//   invalid_argument, bad_format -> ValueError     not_found -> LookupError
//   numeric -> ArithmeticError                     out_of_memory -> MemoryError
//   unsupported, internal -> RuntimeError
// Arrays are 1-D numpy arrays. Arrays that are only read (logits for probs / sample, p, q,
// candidates, uniforms) are converted by nanobind when their dtype or layout differs (a copy);
// Chain.apply writes its array in place, so it takes only a C-contiguous float32 array and raises
// TypeError for anything else rather than modify a temporary copy.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/python/status.hpp"
#include "decodelab/decodelab.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using decodelab_python::check;

template <class T>
using In = nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Logits = nb::ndarray<float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Embeddings = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
template <class T>
using Out = nb::ndarray<nb::numpy, T, nb::ndim<1>>;

template <class T>
Out<T> to_numpy(std::vector<T>&& values) {
  auto* heap = new std::vector<T>(std::move(values));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return Out<T>(heap->data(), {heap->size()}, owner);
}

decodelab_verify_rule rule_named(const std::string& name) {
  if (name == "rrs_iid") return DECODELAB_VERIFY_RRS_IID;
  if (name == "rrs_wor") return DECODELAB_VERIFY_RRS_WOR;
  if (name == "kseq") return DECODELAB_VERIFY_KSEQ;
  if (name == "target_only") return DECODELAB_VERIFY_TARGET_ONLY;
  throw nb::value_error(("unknown verify rule '" + name + "'; known: rrs_iid rrs_wor kseq target_only").c_str());
}

// Both laws must cover the same vocabulary; the C API cannot see two lengths, so check here.
void check_same_size(std::size_t p, std::size_t q) {
  if (p != q)
    throw nb::value_error(
        ("p and q differ in size (" + std::to_string(p) + " vs " + std::to_string(q) + " entries)").c_str());
}

class Chain {
 public:
  explicit Chain(decodelab_chain* handle) : handle_(handle) {}
  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;
  ~Chain() { decodelab_chain_free(handle_); }

  static Chain* create(const std::string& spec) {
    decodelab_chain* h = nullptr;
    check(decodelab_chain_create(spec.c_str(), &h));
    return new Chain(h);
  }
  static Chain* from_params(const std::string& params) {
    decodelab_chain* h = nullptr;
    check(decodelab_chain_from_params(params.c_str(), &h));
    return new Chain(h);
  }
  Chain* clone() const {
    decodelab_chain* h = nullptr;
    check(decodelab_chain_clone(handle_, &h));
    return new Chain(h);
  }
  std::size_t size() const {
    std::size_t n = 0;
    check(decodelab_chain_length(handle_, &n));
    return n;
  }
  std::string describe() const {
    std::size_t length = 0;
    check(decodelab_chain_describe(handle_, nullptr, 0, &length));
    std::string text(length + 1, '\0');
    check(decodelab_chain_describe(handle_, text.data(), text.size(), &length));
    text.resize(length);
    return text;
  }
  int32_t apply(Logits logits) {
    int32_t selected = -1;
    check(decodelab_chain_apply(handle_, logits.data(), logits.shape(0), &selected));
    return selected;
  }
  Out<float> probs(In<float> logits) {
    std::vector<float> p(logits.shape(0));
    check(decodelab_chain_probs(handle_, logits.data(), logits.shape(0), p.data()));
    return to_numpy(std::move(p));
  }
  int32_t sample(In<float> logits, uint64_t seed, uint64_t step, uint64_t stream) {
    int32_t token = -1;
    check(decodelab_chain_sample(handle_, logits.data(), logits.shape(0), seed, stream, step, &token));
    return token;
  }
  void accept(int32_t token) { check(decodelab_chain_accept(handle_, token)); }
  void reset() { check(decodelab_chain_reset(handle_)); }
  void bind_embeddings(Embeddings e) {
    check(decodelab_chain_bind_embeddings(handle_, e.data(), e.shape(0), e.shape(1)));
  }

 private:
  decodelab_chain* handle_;
};

std::pair<int32_t, int32_t> verify(const std::string& rule, In<float> p, std::optional<In<float>> q,
                                   In<int32_t> candidates, In<double> accept_u, double residual_u, double rho) {
  const float* q_data = nullptr;
  if (q) {
    check_same_size(p.shape(0), q->shape(0));
    q_data = q->data();
  }
  if (accept_u.shape(0) != candidates.shape(0))
    throw nb::value_error(("accept_u has " + std::to_string(accept_u.shape(0)) + " uniforms for " +
                           std::to_string(candidates.shape(0)) + " candidates")
                              .c_str());
  decodelab_verify_result r;
  check(decodelab_verify(rule_named(rule), p.data(), q_data, p.shape(0), candidates.data(), candidates.shape(0),
                         accept_u.data(), residual_u, rho, &r));
  return {r.accepted, r.token};
}

std::pair<int32_t, int32_t> verify_seeded(const std::string& rule, In<float> p, std::optional<In<float>> q,
                                          In<int32_t> candidates, uint64_t seed, uint64_t position, double rho) {
  const float* q_data = nullptr;
  if (q) {
    check_same_size(p.shape(0), q->shape(0));
    q_data = q->data();
  }
  decodelab_verify_result r;
  check(decodelab_verify_seeded(rule_named(rule), p.data(), q_data, p.shape(0), candidates.data(), candidates.shape(0),
                                rho, seed, position, &r));
  return {r.accepted, r.token};
}

nb::list catalogue(decodelab_kind kind) {
  std::size_t count = 0;
  check(decodelab_component_count(kind, &count));
  nb::list out;
  for (std::size_t i = 0; i < count; ++i) {
    decodelab_component_info info;
    check(decodelab_component_get(kind, i, &info));
    nb::list params;
    for (std::size_t j = 0; j < info.n_params; ++j) {
      decodelab_param_info p;
      check(decodelab_component_param(kind, i, j, &p));
      nb::dict d;
      d["name"] = p.name;
      d["type"] = p.type;
      d["default"] = p.default_value;
      d["min"] = p.min;
      d["max"] = p.max;
      d["doc"] = p.doc;
      d["description"] = p.description;
      params.append(d);
    }
    nb::dict c;
    c["name"] = info.name;
    c["doc"] = info.doc;
    c["roles"] = info.roles;
    c["params"] = params;
    out.append(c);
  }
  return out;
}

}  // namespace

namespace decodelab_python {
void bind_models(nb::module_& m);  // models.cpp
}

NB_MODULE(_native, m) {
  m.doc() = "decodelab's sampler chains and speculative verification rules on numpy arrays (see decodelab_native)";
  m.attr("ABI_VERSION") = DECODELAB_ABI_VERSION;
  m.def(
      "version", [] { return std::string(decodelab_version()); }, "The loaded library's version, \"0.1.0\".");
  m.def(
      "abi_version", [] { return decodelab_abi_version(); }, "The loaded library's C ABI version.");

  nb::class_<Chain>(m, "Chain", "A sampler chain, e.g. Chain(\"top_k(k=40),temperature(t=0.7)\").")
      .def(nb::new_(&Chain::create), "spec"_a, "Creates a chain from a spec string (\"\" is the identity).")
      .def_static("from_params", &Chain::from_params, "params"_a,
                  "The chain decodelab's sampling decoders build from \"temperature=0.7,top_k=40,...\".")
      .def("clone", &Chain::clone, "An independent copy in the same state.")
      .def("__len__", &Chain::size)
      .def("__str__", &Chain::describe)
      .def("__repr__", [](const Chain& c) { return "Chain(" + c.describe() + ")"; })
      .def("apply", &Chain::apply, "logits"_a.noconvert(),
           "Applies the chain in place to a float32 array: dropped tokens become -inf, kept ones hold their "
           "processed logits. Returns the token a terminal sampler selected, or -1.")
      .def("probs", &Chain::probs, "logits"_a, "The chain's distribution over the vocabulary (a new float32 array).")
      .def("sample", &Chain::sample, "logits"_a, "seed"_a, "step"_a, "stream"_a = uint64_t(DECODELAB_STREAM_SAMPLE),
           "Applies the chain and draws a token with the Philox uniform of (seed, stream, step), as decodelab's "
           "sample decoder does at position `step`. Does not call accept().")
      .def("accept", &Chain::accept, "token"_a, "Tells the chain which token was emitted (dist advances its step).")
      .def("reset", &Chain::reset, "Returns every sampler to its state at creation.")
      .def("bind_embeddings", &Chain::bind_embeddings, "embeddings"_a,
           "Gives the chain the token embeddings of the model whose logits it processes (a C-contiguous "
           "float32 array [vocab, dim], row = token id, copied): Top-W with gamma > 0 needs them.");

  m.def("verify", &verify, "rule"_a, "p"_a, "q"_a.none(), "candidates"_a, "accept_u"_a, "residual_u"_a, "rho"_a = 1.0,
        "Decides one position by a speculative verification rule (\"rrs_iid\", \"rrs_wor\", \"kseq\", "
        "\"target_only\"). p, q: float32 laws; candidates: int32; accept_u: float64, one per candidate. Returns "
        "(accepted index or -1, token).");
  m.def("verify_seeded", &verify_seeded, "rule"_a, "p"_a, "q"_a.none(), "candidates"_a, "seed"_a, "position"_a,
        "rho"_a = 1.0, "verify() with the uniforms decodelab's tree decoders draw at (seed, position).");
  m.def(
      "kseq_rho",
      [](In<float> p, In<float> q, int32_t k) {
        check_same_size(p.shape(0), q.shape(0));
        double rho = 0.0;
        check(decodelab_kseq_rho(p.data(), q.data(), p.shape(0), k, &rho));
        return rho;
      },
      "p"_a, "q"_a, "k"_a, "The smallest valid K-SEQ division factor for k drafts.");
  m.def(
      "residual",
      [](In<float> p, In<float> q) {
        check_same_size(p.shape(0), q.shape(0));
        std::vector<float> out(p.shape(0));
        double mass = 0.0;
        check(decodelab_residual(p.data(), q.data(), p.shape(0), out.data(), &mass));
        return std::make_pair(to_numpy(std::move(out)), mass);
      },
      "p"_a, "q"_a, "(norm((p - q)_+), its mass before normalizing); all zero when the mass is 0.");
  m.def(
      "philox_uniforms",
      [](uint64_t seed, uint64_t stream, uint64_t step, std::size_t n) {
        std::vector<double> u(n);
        check(decodelab_philox_uniforms(seed, stream, step, u.data(), n));
        return to_numpy(std::move(u));
      },
      "seed"_a, "stream"_a, "step"_a, "n"_a, "The first n uniforms in (0, 1) of Philox block (seed, stream, step).");
  m.def(
      "stream",
      [](uint32_t purpose, uint64_t substream) {
        return decodelab_stream(decodelab_stream_purpose(purpose), substream);
      },
      "purpose"_a, "substream"_a = 0, "The stream id of a purpose (STREAM_*) and sub-stream.");
  m.attr("STREAM_SAMPLE") = uint32_t(DECODELAB_STREAM_SAMPLE);
  m.attr("STREAM_DRAFT") = uint32_t(DECODELAB_STREAM_DRAFT);
  m.attr("STREAM_ACCEPT") = uint32_t(DECODELAB_STREAM_ACCEPT);
  m.attr("STREAM_RESIDUAL") = uint32_t(DECODELAB_STREAM_RESIDUAL);
  m.def(
      "samplers", [] { return catalogue(DECODELAB_KIND_SAMPLER); }, "Every sampler with its parameters.");
  m.def(
      "decoders", [] { return catalogue(DECODELAB_KIND_DECODER); }, "Every decoder with its parameters.");
  decodelab_python::bind_models(m);
}
