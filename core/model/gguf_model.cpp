#include "core/model/gguf_model.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <utility>

#include "core/model/quants.hpp"
#include "core/thread_team.hpp"
#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"

#if __has_include("core/text/tokenizer.hpp")
#include "core/text/tokenizer.hpp"
#define DECODELAB_HAS_TOKENIZER 1
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace decodelab {

namespace {

// A weight matrix inside the mapping: rows x cols of `type`.
struct Weight {
  const uint8_t* data = nullptr;
  GgmlType type = GgmlType::F32;
  std::size_t rows = 0, cols = 0;
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  Weight wq, wk, wv, wo, w_gate, w_up, w_down;
  std::vector<float> bq, bk, bv;  // qwen2 only
};

// Bytes of keys and values a model's sequences hold (kv_bytes_in_use). Rows are charged where
// they are stored and refunded when let go; forks share committed rows, so those count once. The
// sequences hold it by shared_ptr because the table frees them after the model's own members.
struct KvLedger {
  std::atomic<std::size_t> bytes{0};
};

// What one holder of rows (a run, a pending tree) has charged to the ledger: set() re-states it,
// destruction and moves hand it back or over.
class KvCharge {
 public:
  KvCharge() = default;
  KvCharge(const KvCharge& other) : ledger_(other.ledger_) { set(other.bytes_); }
  KvCharge(KvCharge&& other) noexcept : ledger_(std::move(other.ledger_)), bytes_(std::exchange(other.bytes_, 0)) {}
  KvCharge& operator=(KvCharge other) noexcept {
    set(0);
    ledger_ = std::move(other.ledger_);
    bytes_ = std::exchange(other.bytes_, 0);
    return *this;
  }
  ~KvCharge() { set(0); }

  void bind(std::shared_ptr<KvLedger> ledger) {
    if (ledger_ == ledger) return;
    const std::size_t held = bytes_;
    set(0);
    ledger_ = std::move(ledger);
    set(held);
  }
  void set(std::size_t bytes) {
    if (ledger_) {
      if (bytes >= bytes_) ledger_->bytes += bytes - bytes_;
      else ledger_->bytes -= bytes_ - bytes;
    }
    bytes_ = bytes;
  }

 private:
  std::shared_ptr<KvLedger> ledger_;
  std::size_t bytes_ = 0;
};

// Keys and values of a run of tokens: per layer, kv_dim floats per token for each.
struct KvRows {
  std::vector<std::vector<float>> k, v;  // [layer][row * kv_dim]
  std::size_t rows = 0;
  KvCharge charge;  // rows x (every layer's keys and values)

  std::size_t size() const { return rows; }
  void resize(std::size_t n) {  // shortens
    if (n >= rows) return;
    for (std::size_t l = 0; l < k.size(); ++l) {
      const std::size_t kv_dim = k[l].size() / rows;
      k[l].resize(n * kv_dim);
      v[l].resize(n * kv_dim);
    }
    rows = n;
    charge.set(n * row_bytes());
  }
  // Appends row `row` of per-layer [rows x kv_dim] matrices.
  void append(const std::vector<std::vector<float>>& from_k, const std::vector<std::vector<float>>& from_v,
              std::size_t row, std::size_t kv_dim, const std::shared_ptr<KvLedger>& ledger) {
    k.resize(from_k.size());
    v.resize(from_v.size());
    for (std::size_t l = 0; l < from_k.size(); ++l) {
      const float* kr = from_k[l].data() + row * kv_dim;
      const float* vr = from_v[l].data() + row * kv_dim;
      k[l].insert(k[l].end(), kr, kr + kv_dim);
      v[l].insert(v[l].end(), vr, vr + kv_dim);
    }
    ++rows;
    charge.bind(ledger);
    charge.set(rows * row_bytes());
  }

 private:
  std::size_t row_bytes() const {
    std::size_t floats = 0;
    for (std::size_t l = 0; l < k.size(); ++l) floats += (k[l].size() + v[l].size());
    return rows ? floats / rows * sizeof(float) : 0;
  }
};

// A sequence's keys and values: the committed rows, shared with forks, and the rows of the last
// evaluated tree's nodes.
class GgufSequence final : public SequenceStorage {
 public:
  GgufSequence(std::size_t kv_dim, std::shared_ptr<KvLedger> ledger) : kv_dim_(kv_dim), ledger_(std::move(ledger)) {
    pending_charge.bind(ledger_);
  }

  std::unique_ptr<SequenceStorage> fork() override {
    auto child = std::make_unique<GgufSequence>(kv_dim_, ledger_);
    child->committed = committed.fork();
    return child;
  }
  void commit(std::size_t, std::span<const int32_t> path) override {
    for (int32_t node : path) committed.tail().append(pending_k, pending_v, std::size_t(node), kv_dim_, ledger_);
  }
  void truncate(std::size_t length) override { committed.truncate(length); }
  void drop_pending() override {
    pending_k.clear();
    pending_v.clear();
    pending_charge.set(0);
  }

  SegmentChain<KvRows> committed;
  std::vector<std::vector<float>> pending_k, pending_v;  // per layer: nodes x kv_dim
  KvCharge pending_charge;                               // pending_k and pending_v

 private:
  std::size_t kv_dim_;
  std::shared_ptr<KvLedger> ledger_;
};

// One contiguous stretch of committed keys/values for attention.
struct KvChunk {
  const float* k;
  const float* v;
  std::size_t count;
};

}  // namespace

struct GgufModel::Impl {
  std::unique_ptr<GgufFile> file;
  GgufModelOptions options;
  std::vector<LayerWeights> layers;
  Weight token_embd, output;
  std::vector<float> output_norm;
  std::vector<float> rope_freq;  // per rotated pair
  std::vector<std::string> vocab;
  std::unique_ptr<ThreadTeam> team;  // the forward pass's threads (options.threads members)
  std::shared_ptr<KvLedger> kv_ledger = std::make_shared<KvLedger>();
#ifdef DECODELAB_HAS_TOKENIZER
  std::unique_ptr<Tokenizer> tokenizer;
#endif
};

namespace {

Weight load_weight(const GgufFile& f, const std::string& name, std::size_t cols, std::size_t rows) {
  const GgufTensor& t = f.tensor(name);
  if (t.dims.size() != 2 || t.dims[0] != cols || t.dims[1] != rows) {
    std::string shape;
    for (uint64_t d : t.dims) {
      if (!shape.empty()) shape += 'x';
      shape += std::to_string(d);
    }
    fail(ErrorCode::bad_format, f.path() + ": tensor '" + name + "' has shape " + shape + ", expected " +
                                    std::to_string(cols) + "x" + std::to_string(rows));
  }
  if (!quant_supported(t.type)) {
    fail(ErrorCode::unsupported, f.path() + ": tensor '" + name + "' has type " + ggml_type_name(t.type) +
                                     ", which the CPU runtime does not decode");
  }
  return {t.data, t.type, rows, cols};
}

std::vector<float> load_vector(const GgufFile& f, const std::string& name, std::size_t n) {
  const GgufTensor& t = f.tensor(name);
  if (t.elements() != n || t.dims[0] != n) {
    fail(ErrorCode::bad_format, f.path() + ": tensor '" + name + "' has " + std::to_string(t.elements()) +
                                    " elements, expected " + std::to_string(n));
  }
  if (!quant_supported(t.type))
    fail(ErrorCode::unsupported, f.path() + ": tensor '" + name + "' has unsupported type " + ggml_type_name(t.type));
  std::vector<float> out(n);
  dequantize_row(t.type, t.data, out.data(), n);
  return out;
}

void rmsnorm(float* out, const float* x, const float* w, int n, float eps) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const float scale = float(1.0 / std::sqrt(ss / n + eps));
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// Rotates one head's vector in place at position `pos`.
void rope(float* v, int n_rot, const float* freq, int pos, bool neox) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float angle = float(pos) * freq[i];
    const float c = std::cos(angle), s = std::sin(angle);
    const int a = neox ? i : 2 * i;
    const int b = neox ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

int thread_count(int requested) {
#ifdef _OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

}  // namespace

GgufModel::GgufModel(const std::string& path, GgufModelOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->team = std::make_unique<ThreadTeam>(thread_count(options.threads));
  impl_->file = std::make_unique<GgufFile>(path);
  const GgufFile& f = *impl_->file;
  cfg_.arch = f.get_string("general.architecture");
  if (cfg_.arch != "llama" && cfg_.arch != "qwen2") {
    fail(ErrorCode::unsupported, path + ": architecture '" + cfg_.arch + "' is not supported (llama, qwen2)");
  }
  const std::string a = cfg_.arch + ".";
  cfg_.dim = int(f.get_uint(a + "embedding_length"));
  cfg_.n_layers = int(f.get_uint(a + "block_count"));
  cfg_.hidden_dim = int(f.get_uint(a + "feed_forward_length"));
  cfg_.n_heads = int(f.get_uint(a + "attention.head_count"));
  cfg_.n_kv_heads = int(f.get_uint(a + "attention.head_count_kv", uint64_t(cfg_.n_heads)));
  if (cfg_.dim <= 0 || cfg_.n_layers <= 0 || cfg_.hidden_dim <= 0 || cfg_.n_heads <= 0 || cfg_.n_kv_heads <= 0 ||
      cfg_.n_heads % cfg_.n_kv_heads != 0) {
    fail(ErrorCode::bad_format, path + ": inconsistent hyperparameters (embedding_length, block_count, head counts)");
  }
  if (options.layers > cfg_.n_layers) {
    fail(ErrorCode::invalid_argument, path + ": layers=" + std::to_string(options.layers) +
                                          ", but the model has only " + std::to_string(cfg_.n_layers) + " blocks");
  }
  if (options.layers > 0) cfg_.n_layers = options.layers;
  cfg_.head_dim = int(f.get_uint(a + "attention.key_length", uint64_t(cfg_.dim / cfg_.n_heads)));
  if (int(f.get_uint(a + "attention.value_length", uint64_t(cfg_.head_dim))) != cfg_.head_dim) {
    fail(ErrorCode::unsupported, path + ": attention.value_length differs from key_length");
  }
  cfg_.n_rot = int(f.get_uint(a + "rope.dimension_count", uint64_t(cfg_.head_dim)));
  if (cfg_.n_rot <= 0 || cfg_.n_rot > cfg_.head_dim || cfg_.n_rot % 2)
    fail(ErrorCode::bad_format, path + ": bad rope.dimension_count");
  cfg_.rope_theta = float(f.get_float(a + "rope.freq_base", 10000.0));
  cfg_.norm_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
  cfg_.rope_neox = cfg_.arch == "qwen2";
  cfg_.train_context = int(f.get_uint(a + "context_length", 0));
  if (f.has(a + "rope.scaling.type") && f.get_string(a + "rope.scaling.type") != "none") {
    fail(ErrorCode::unsupported,
         path + ": rope.scaling.type '" + f.get_string(a + "rope.scaling.type") + "' is not supported");
  }

  const std::size_t dim = cfg_.dim, q_dim = std::size_t(cfg_.n_heads) * cfg_.head_dim,
                    kv_dim = std::size_t(cfg_.n_kv_heads) * cfg_.head_dim, hidden = cfg_.hidden_dim;
  const GgufTensor& emb = f.tensor("token_embd.weight");
  cfg_.vocab = int(emb.dims.size() == 2 ? emb.dims[1] : 0);
  impl_->token_embd = load_weight(f, "token_embd.weight", dim, cfg_.vocab);
  impl_->output = f.find_tensor("output.weight") ? load_weight(f, "output.weight", dim, cfg_.vocab) : impl_->token_embd;
  impl_->output_norm = load_vector(f, "output_norm.weight", dim);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights w;
    w.attn_norm = load_vector(f, p + "attn_norm.weight", dim);
    w.ffn_norm = load_vector(f, p + "ffn_norm.weight", dim);
    w.wq = load_weight(f, p + "attn_q.weight", dim, q_dim);
    w.wk = load_weight(f, p + "attn_k.weight", dim, kv_dim);
    w.wv = load_weight(f, p + "attn_v.weight", dim, kv_dim);
    w.wo = load_weight(f, p + "attn_output.weight", q_dim, dim);
    w.w_gate = load_weight(f, p + "ffn_gate.weight", dim, hidden);
    w.w_up = load_weight(f, p + "ffn_up.weight", dim, hidden);
    w.w_down = load_weight(f, p + "ffn_down.weight", hidden, dim);
    if (f.find_tensor(p + "attn_q.bias")) {
      w.bq = load_vector(f, p + "attn_q.bias", q_dim);
      w.bk = load_vector(f, p + "attn_k.bias", kv_dim);
      w.bv = load_vector(f, p + "attn_v.bias", kv_dim);
    } else if (cfg_.arch == "qwen2") {
      fail(ErrorCode::bad_format, path + ": qwen2 model lacks tensor '" + p + "attn_q.bias'");
    }
    impl_->layers.push_back(std::move(w));
  }
  // theta_i = base^(-2i/n_rot); Llama-3 style files scale them by a rope_freqs.weight tensor.
  const int pairs = cfg_.n_rot / 2;
  std::vector<float> factors(pairs, 1.0f);
  if (f.find_tensor("rope_freqs.weight")) factors = load_vector(f, "rope_freqs.weight", pairs);
  for (int i = 0; i < pairs; ++i) {
    impl_->rope_freq.push_back(float(std::pow(double(cfg_.rope_theta), -2.0 * i / cfg_.n_rot) / factors[i]));
  }

  if (f.has("tokenizer.ggml.tokens")) impl_->vocab = f.get_strings("tokenizer.ggml.tokens");
  info_.name = std::filesystem::path(path).filename().string();
  if (options.layers > 0) info_.name += " (first " + std::to_string(options.layers) + " blocks)";
  info_.architecture = cfg_.arch;
  info_.vocab_size = cfg_.vocab;
  info_.context_length = cfg_.train_context > 0 ? std::min(options.context, cfg_.train_context) : options.context;
  info_.bos = TokenId(f.get_int("tokenizer.ggml.bos_token_id", -1));
  info_.eos = TokenId(f.get_int("tokenizer.ggml.eos_token_id", -1));
  info_.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", f.get_string("tokenizer.ggml.model", "") == "llama");
#ifdef DECODELAB_HAS_TOKENIZER
  if (f.has("tokenizer.ggml.model") && f.has("tokenizer.ggml.tokens")) {
    TokenizerVocab v;
    v.model = f.get_string("tokenizer.ggml.model");
    v.pre = f.get_string("tokenizer.ggml.pre", "default");
    v.tokens = impl_->vocab;
    if (f.has("tokenizer.ggml.scores")) v.scores = f.get_floats("tokenizer.ggml.scores");
    if (f.has("tokenizer.ggml.token_type")) {
      for (int64_t t : f.get_ints("tokenizer.ggml.token_type")) v.token_types.push_back(int32_t(t));
    }
    if (f.has("tokenizer.ggml.merges")) v.merges = f.get_strings("tokenizer.ggml.merges");
    v.bos = info_.bos;
    v.eos = info_.eos;
    v.eot = int32_t(f.get_int("tokenizer.ggml.eot_token_id", -1));
    v.pad = int32_t(f.get_int("tokenizer.ggml.padding_token_id", -1));
    v.unk = int32_t(f.get_int("tokenizer.ggml.unknown_token_id", -1));
    v.add_bos = info_.add_bos;
    v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", false);
    v.chat_template = f.get_string("tokenizer.chat_template", "");
    impl_->tokenizer = std::make_unique<Tokenizer>(std::move(v));
  }
#endif
}

GgufModel::~GgufModel() = default;

std::size_t GgufModel::kv_row_bytes() const {
  return 2 * std::size_t(cfg_.n_layers) * std::size_t(cfg_.n_kv_heads) * cfg_.head_dim * sizeof(float);
}
std::size_t GgufModel::kv_bytes_per_token() const { return kv_row_bytes(); }
std::size_t GgufModel::kv_bytes_in_use() const { return impl_->kv_ledger->bytes.load(); }

std::string GgufModel::token_text(TokenId token) const {
  if (token < 0 || token >= cfg_.vocab)
    fail(ErrorCode::invalid_argument, "gguf model: token " + std::to_string(token) + " out of range");
#ifdef DECODELAB_HAS_TOKENIZER
  if (impl_->tokenizer && token < impl_->tokenizer->vocab_size()) return impl_->tokenizer->token_text(token);
#endif
  if (std::size_t(token) < impl_->vocab.size()) return impl_->vocab[token];
  std::string placeholder = "<";
  placeholder += std::to_string(token);
  placeholder += '>';
  return placeholder;
}

bool GgufModel::has_tokenizer() const {
#ifdef DECODELAB_HAS_TOKENIZER
  return impl_->tokenizer != nullptr;
#else
  return false;
#endif
}

std::vector<TokenId> GgufModel::tokenize(std::string_view text, bool add_special) const {
#ifdef DECODELAB_HAS_TOKENIZER
  if (impl_->tokenizer) return impl_->tokenizer->encode(text, add_special, /*parse_special=*/true);
#endif
  return LanguageModel::tokenize(text, add_special);
}

std::string GgufModel::detokenize(std::span<const TokenId> tokens) const {
#ifdef DECODELAB_HAS_TOKENIZER
  if (impl_->tokenizer) return impl_->tokenizer->decode(tokens);
#endif
  return LanguageModel::detokenize(tokens);
}

std::optional<Matrix> GgufModel::token_embeddings() const {
  Matrix m;
  m.resize(cfg_.vocab, cfg_.dim);
  const Weight& e = impl_->token_embd;
  const std::size_t stride = ggml_row_bytes(e.type, e.cols);
  for (int r = 0; r < cfg_.vocab; ++r) dequantize_row(e.type, e.data + r * stride, m.row(r).data(), e.cols);
  return m;
}

std::unique_ptr<SequenceStorage> GgufModel::new_storage() {
  return std::make_unique<GgufSequence>(std::size_t(cfg_.n_kv_heads) * cfg_.head_dim, impl_->kv_ledger);
}

void GgufModel::forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) {
  const LlamaConfig& c = cfg_;
  ThreadTeam& team = *impl_->team;
  const std::size_t dim = c.dim, hd = c.head_dim, q_dim = std::size_t(c.n_heads) * hd,
                    kv_dim = std::size_t(c.n_kv_heads) * hd, hidden = c.hidden_dim, vocab = c.vocab;
  const int group = c.n_heads / c.n_kv_heads;

  // Flatten all nodes: global index, their tree, position, and ancestors-or-self (global indices).
  struct NodeRef {
    std::size_t tree;
    int pos;
    std::vector<std::size_t> visible;  // ancestors-or-self, root first
  };
  std::vector<NodeRef> nodes;
  std::vector<std::size_t> tree_first(batch.size());
  std::vector<GgufSequence*> seqs(batch.size());
  std::vector<std::vector<std::vector<KvChunk>>> chunks(batch.size());  // [tree][layer]
  for (std::size_t t = 0; t < batch.size(); ++t) {
    GgufSequence& s = static_cast<GgufSequence&>(*batch[t].storage);
    seqs[t] = &s;
    tree_first[t] = nodes.size();
    for (std::size_t i = 0; i < batch[t].nodes.size(); ++i) {
      NodeRef r{t, int(batch[t].committed) + batch[t].depth[i], {}};
      for (int32_t j = int32_t(i); j >= 0; j = batch[t].nodes[j].parent)
        r.visible.push_back(tree_first[t] + std::size_t(j));
      std::reverse(r.visible.begin(), r.visible.end());
      nodes.push_back(std::move(r));
    }
    // Shared segments newest first, then the sequence's own rows. Attention adds scores and values
    // in this order, so a sequence whose prefix spans two or more shared segments (a fork of a fork)
    // rounds differently from a fresh evaluation of the same tokens (position order). Position order
    // would make them equal bit for bit, but changes the logits decoders have seen so far.
    chunks[t].resize(c.n_layers);
    for (int l = 0; l < c.n_layers; ++l) {
      std::vector<KvChunk>& ch = chunks[t][l];
      s.committed.for_each_shared([&](std::size_t, std::size_t count, const KvRows& run) {
        ch.push_back({run.k[l].data(), run.v[l].data(), count});
      });
      const KvRows& own = s.committed.tail();
      if (own.rows > 0) ch.push_back({own.k[l].data(), own.v[l].data(), own.rows});
    }
  }
  const std::size_t N = nodes.size();
  std::vector<float> x(N * dim), xn(N * dim), q(N * q_dim), att(N * q_dim), proj(N * dim), gate(N * hidden),
      up(N * hidden);
  std::vector<std::vector<float>> k_all(c.n_layers), v_all(c.n_layers);

  const Weight& emb = impl_->token_embd;
  const std::size_t emb_stride = ggml_row_bytes(emb.type, emb.cols);
  for (std::size_t n = 0; n < N; ++n) {
    const TokenId tok = batch[nodes[n].tree].nodes[n - tree_first[nodes[n].tree]].token;
    dequantize_row(emb.type, emb.data + std::size_t(tok) * emb_stride, x.data() + n * dim, dim);
  }
  const MatmulPrecision precision = impl_->options.precision;
  auto mm = [&](const Weight& w, const float* in, float* o) {
    matmul(w.type, w.data, w.rows, w.cols, in, N, o, team, precision);
  };

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = impl_->layers[l];
    std::vector<float>& K = k_all[l];
    std::vector<float>& V = v_all[l];
    K.resize(N * kv_dim);
    V.resize(N * kv_dim);
    for (std::size_t n = 0; n < N; ++n)
      rmsnorm(xn.data() + n * dim, x.data() + n * dim, w.attn_norm.data(), int(dim), c.norm_eps);
    mm(w.wq, xn.data(), q.data());
    mm(w.wk, xn.data(), K.data());
    mm(w.wv, xn.data(), V.data());
    for (std::size_t n = 0; n < N; ++n) {
      if (!w.bq.empty()) {
        for (std::size_t i = 0; i < q_dim; ++i) q[n * q_dim + i] += w.bq[i];
        for (std::size_t i = 0; i < kv_dim; ++i) K[n * kv_dim + i] += w.bk[i];
        for (std::size_t i = 0; i < kv_dim; ++i) V[n * kv_dim + i] += w.bv[i];
      }
      for (int h = 0; h < c.n_heads; ++h)
        rope(q.data() + n * q_dim + h * hd, c.n_rot, impl_->rope_freq.data(), nodes[n].pos, c.rope_neox);
      for (int h = 0; h < c.n_kv_heads; ++h)
        rope(K.data() + n * kv_dim + h * hd, c.n_rot, impl_->rope_freq.data(), nodes[n].pos, c.rope_neox);
    }
    // Attention: each (node, head) sees the committed prefix and its own ancestors-or-self.
    const float inv_sqrt = 1.0f / std::sqrt(float(hd));
    team.parallel_for(N * c.n_heads, 1, [&](std::size_t first_job, std::size_t end_job) {
      for (std::size_t job = first_job; job < end_job; ++job) {
        const std::size_t n = std::size_t(job) / c.n_heads;
        const int h = int(std::size_t(job) % c.n_heads);
        const std::size_t kvo = std::size_t(h / group) * hd;
        const float* qh = q.data() + n * q_dim + h * hd;
        const std::vector<KvChunk>& ch = chunks[nodes[n].tree][l];
        std::vector<float> scores;
        scores.reserve(batch[nodes[n].tree].committed + nodes[n].visible.size());
        for (const KvChunk& k : ch) {
          for (std::size_t p = 0; p < k.count; ++p) {
            const float* kp = k.k + p * kv_dim + kvo;
            float s = 0.0f;
            for (std::size_t i = 0; i < hd; ++i) s += qh[i] * kp[i];
            scores.push_back(s * inv_sqrt);
          }
        }
        for (std::size_t m : nodes[n].visible) {
          const float* kp = K.data() + m * kv_dim + kvo;
          float s = 0.0f;
          for (std::size_t i = 0; i < hd; ++i) s += qh[i] * kp[i];
          scores.push_back(s * inv_sqrt);
        }
        const float mx = *std::max_element(scores.begin(), scores.end());
        double sum = 0.0;
        for (float& s : scores) {
          s = std::exp(s - mx);
          sum += s;
        }
        float* o = att.data() + n * q_dim + h * hd;
        std::fill(o, o + hd, 0.0f);
        std::size_t idx = 0;
        for (const KvChunk& k : ch) {
          for (std::size_t p = 0; p < k.count; ++p) {
            const float a = float(scores[idx++] / sum);
            const float* vp = k.v + p * kv_dim + kvo;
            for (std::size_t i = 0; i < hd; ++i) o[i] += a * vp[i];
          }
        }
        for (std::size_t m : nodes[n].visible) {
          const float a = float(scores[idx++] / sum);
          const float* vp = V.data() + m * kv_dim + kvo;
          for (std::size_t i = 0; i < hd; ++i) o[i] += a * vp[i];
        }
      }
    });
    mm(w.wo, att.data(), proj.data());
    for (std::size_t i = 0; i < N * dim; ++i) x[i] += proj[i];
    // SwiGLU feed-forward.
    for (std::size_t n = 0; n < N; ++n)
      rmsnorm(xn.data() + n * dim, x.data() + n * dim, w.ffn_norm.data(), int(dim), c.norm_eps);
    mm(w.w_gate, xn.data(), gate.data());
    mm(w.w_up, xn.data(), up.data());
    for (std::size_t i = 0; i < N * hidden; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    mm(w.w_down, gate.data(), proj.data());
    for (std::size_t i = 0; i < N * dim; ++i) x[i] += proj[i];
  }
  // The output head, for the nodes whose logits are wanted: all of a tree's, or only its last
  // node's (a prefill), which spares vocab x dim products per other node.
  std::vector<std::size_t> head_first(batch.size());  // first row of tree t among the head's rows
  std::size_t H = 0;
  for (std::size_t t = 0; t < batch.size(); ++t) {
    const std::size_t count = batch[t].nodes.size();
    const std::size_t rows = batch[t].last_logits_only ? 1 : count;
    for (std::size_t i = 0; i < rows; ++i) {
      const std::size_t n = tree_first[t] + count - rows + i;
      rmsnorm(xn.data() + (H + i) * dim, x.data() + n * dim, impl_->output_norm.data(), int(dim), c.norm_eps);
    }
    head_first[t] = H;
    H += rows;
  }
  std::vector<float> logits(H * vocab);
  const Weight& head = impl_->output;
  matmul(head.type, head.data, head.rows, head.cols, xn.data(), H, logits.data(), team, precision);

  for (std::size_t t = 0; t < batch.size(); ++t) {
    GgufSequence& s = *seqs[t];
    const std::size_t first = tree_first[t], count = batch[t].nodes.size();
    const std::size_t rows = batch[t].last_logits_only ? 1 : count;
    out[t].resize(int(rows), int(vocab));
    std::copy(logits.begin() + head_first[t] * vocab, logits.begin() + (head_first[t] + rows) * vocab,
              out[t].data.begin());
    s.pending_k.assign(c.n_layers, {});
    s.pending_v.assign(c.n_layers, {});
    for (int l = 0; l < c.n_layers; ++l) {
      s.pending_k[l].assign(k_all[l].begin() + first * kv_dim, k_all[l].begin() + (first + count) * kv_dim);
      s.pending_v[l].assign(v_all[l].begin() + first * kv_dim, v_all[l].begin() + (first + count) * kv_dim);
    }
    s.pending_charge.set(count * kv_row_bytes());
  }
}

namespace {

const RegisterModelLoader reg_gguf({
    .name = "gguf",
    .doc = "A Llama or Qwen2 GGUF model (F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K weights) on the CPU.",
    .params = {ParamSpec::string("path", "", "path of the .gguf file"),
               ParamSpec::string("backend", "cpu", "where to run: cpu, or cuda when built with CUDA", {"cpu", "cuda"}),
               ParamSpec::integer("context", 4096, 1, 1 << 24,
                                  "cap on tokens per sequence (also capped by the model's context_length)"),
               ParamSpec::integer("threads", 0, 0, 1024, "CPU threads; 0 = all"),
               ParamSpec::string(
                   "precision", "q8",
                   "products with quantized weights: q8 = 8-bit activations, integer dot products "
                   "(llama.cpp's numerics, fast); f32 = fp32 dot products with dequantized weights (HF's numerics)",
                   {"q8", "f32"}),
               ParamSpec::integer("layers", 0, 0, 4096,
                                  "run only the first N transformer blocks, then the output head "
                                  "(an early-exit self-draft sharing the weights); 0 = all"),
               ParamSpec::integer("device", 0, 0, 1024, "CUDA device index (backend=cuda)"),
               ParamSpec::string("dtype", "f16", "weight type on the device (backend=cuda)", {"f16", "bf16", "f32"})},
    .load = [](const Params& p, const LanguageModel* target) -> std::shared_ptr<LanguageModel> {
      if (p.get_string("backend") == "cuda") {
        // core/cuda registers "gguf-cuda" when CUDA is built; it reads these same parameters.
        for (const ModelLoader* l : ModelLoaderRegistry::instance().list()) {
          if (l->name == "gguf-cuda") return l->load(p, target);
        }
        fail(ErrorCode::unsupported,
             "model 'gguf': backend=cuda, but this build has no CUDA backend (configure with a CUDA toolkit, "
             "DECODELAB_CUDA=ON)");
      }
      if (p.get_string("path").empty()) fail(ErrorCode::invalid_argument, "model 'gguf': parameter 'path' is required");
      GgufModelOptions options{int(p.get_int("context")), int(p.get_int("threads")),
                               p.get_string("precision") == "f32" ? MatmulPrecision::f32 : MatmulPrecision::q8,
                               int(p.get_int("layers"))};
      return std::make_shared<GgufModel>(p.get_string("path"), options);
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(core_model_gguf_model)
