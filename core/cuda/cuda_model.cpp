#include "core/cuda/cuda_model.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "core/cuda/device.hpp"
#include "core/cuda/kernels.hpp"
#include "core/cuda/kv_pages.hpp"
#include "core/model/gguf.hpp"
#include "core/model/quants.hpp"
#include "decodelab/error.hpp"

namespace decodelab {

using namespace cuda;

namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail(ErrorCode::internal, std::string("cublas: ") + what + ": status " + std::to_string(int(status)));
}

DType parse_dtype(const std::string& s) {
  if (s == "f16") return DType::f16;
  if (s == "bf16") return DType::bf16;
  if (s == "f32") return DType::f32;
  fail(ErrorCode::invalid_argument, "cuda backend: dtype '" + s + "' is not one of f16, bf16, f32");
}

cudaDataType cublas_type(DType t) { return t == DType::f32 ? CUDA_R_32F : t == DType::f16 ? CUDA_R_16F : CUDA_R_16BF; }

std::size_t align16(std::size_t n) { return (n + 15) & ~std::size_t(15); }

// A [rows x cols] matrix on the device, row-major (each row one output feature, as in ggml).
struct Matrix2 {
  DeviceBuffer buf;
  std::size_t rows = 0, cols = 0;
};

struct Layer {
  Matrix2 wqkv, wo, wgu, wdown;            // fused [q|k|v] and [gate|up]
  DeviceBuffer attn_norm, ffn_norm, bqkv;  // fp32; bqkv empty without biases
};

// A sequence's keys and values on the device: its committed rows in KV pages (shared with forks by
// reference counts, copied on write) and the rows of the last evaluated tree's nodes.
class CudaSequence final : public SequenceStorage {
 public:
  explicit CudaSequence(CudaModel::Impl& model) : model_(model) {}

  std::unique_ptr<SequenceStorage> fork() override;
  void commit(std::size_t length, std::span<const int32_t> path) override;
  void truncate(std::size_t length) override;
  void release() override;

  std::vector<int> pages;
  DeviceBuffer pending_kv;  // [node][layer][k|v][kv_dim]

 private:
  CudaModel::Impl& model_;
};

}  // namespace

struct CudaModel::Impl {
  CudaModelOptions options;
  DType dtype = DType::f16;
  bool kv_f32 = false;
  LlamaConfig cfg;
  ModelInfo info;
  std::unique_ptr<GgufModel> host;  // vocabulary, tokenizer, embeddings (file-backed models)
  int q_dim = 0, kv_dim = 0, qkv_dim = 0;
  std::size_t kv_elem = 2, row_bytes = 0;  // one node's K/V row over all layers

  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  DeviceBuffer blas_workspace;

  Matrix2 token_embd, output_own;
  const Matrix2* output = nullptr;
  DeviceBuffer output_norm, rope_freq;
  std::vector<Layer> layers;
  std::size_t weight_bytes = 0;

  std::unique_ptr<KvPages> pages;

  // Per-evaluation scratch, sized for `cap_nodes` nodes and `cap_partial` attention partials.
  int cap_nodes = 0;
  std::size_t cap_partial = 0;
  DeviceBuffer x, xn, qkv, att, proj, gu, hact, logits, partial;
  PinnedBuffer meta_host, logits_host, commit_host;
  DeviceBuffer meta_dev, commit_dev;
  cudaEvent_t meta_free = nullptr, commit_free = nullptr;

  // Captured single-node forward passes, by attention split count.
  std::map<int, cudaGraphExec_t> graphs;
  int64_t replays = 0, captures = 0;

  ~Impl() {
    // Work still queued (a commit's row copies) reads buffers freed below.
    if (stream) {
      (void)cudaSetDevice(options.device);
      (void)cudaStreamSynchronize(stream);
    }
    drop_graphs();
    if (meta_free) cudaEventDestroy(meta_free);
    if (commit_free) cudaEventDestroy(commit_free);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  // cudaSetDevice is per host thread, and callers (the daemon's workers) may change threads
  // between calls: every entry point that allocates, launches or synchronizes selects the model's
  // device (rollback and fork only touch host bookkeeping).
  void use_device() const { check(cudaSetDevice(options.device), "cudaSetDevice (the model's device)"); }

  void drop_graphs() {
    for (auto& [s, g] : graphs) cudaGraphExecDestroy(g);
    graphs.clear();
  }

  void init_device() {
    select_device(options.device);
    dtype = parse_dtype(options.dtype);
    kv_f32 = dtype == DType::f32;
    kv_elem = kv_f32 ? 4 : 2;
    if (options.page_tokens <= 0) fail(ErrorCode::invalid_argument, "cuda model: page_tokens must be positive");
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "creating the model's stream");
    check_cublas(cublasCreate(&blas), "cublasCreate");
    check_cublas(cublasSetStream(blas, stream), "cublasSetStream");
    // A fixed workspace lets cuBLAS calls be captured into graphs (no allocation inside capture).
    blas_workspace.alloc(32u << 20, "cuBLAS workspace");
    check_cublas(cublasSetWorkspace(blas, blas_workspace.get(), blas_workspace.bytes()), "cublasSetWorkspace");
    check(cudaEventCreateWithFlags(&meta_free, cudaEventDisableTiming), "creating an event");
    check(cudaEventCreateWithFlags(&commit_free, cudaEventDisableTiming), "creating an event");
  }

  void init_shapes() {
    const LlamaConfig& c = cfg;
    if (c.head_dim > 256 || (c.n_kv_heads * c.head_dim) % 2 != 0) {
      fail(ErrorCode::unsupported,
           "cuda backend: head_dim " + std::to_string(c.head_dim) + " (at most 256, even K/V width) is not supported");
    }
    if (options.split_tokens <= 0) fail(ErrorCode::invalid_argument, "cuda model: split_tokens must be positive");
    q_dim = c.n_heads * c.head_dim;
    kv_dim = c.n_kv_heads * c.head_dim;
    qkv_dim = q_dim + 2 * kv_dim;
    row_bytes = std::size_t(c.n_layers) * 2 * kv_dim * kv_elem;
    const std::size_t page_bytes = row_bytes * std::size_t(options.page_tokens);
    // Chunks of about 64 MiB of pages (at least one page).
    pages = std::make_unique<KvPages>(page_bytes, int(std::max<std::size_t>(1, (64u << 20) / page_bytes)));
  }

  Matrix2 alloc_matrix(std::size_t rows, std::size_t cols, const std::string& what) {
    Matrix2 m;
    m.rows = rows;
    m.cols = cols;
    m.buf.alloc(rows * cols * dtype_size(dtype), "weights " + what + " (" + std::to_string(rows) + "x" +
                                                     std::to_string(cols) + " " + dtype_name(dtype) + ")");
    weight_bytes += m.buf.bytes();
    return m;
  }

  // Dequantizes `t` row by row on the host and converts it on the device into m at row `row0`.
  void upload_rows(const GgufTensor& t, Matrix2& m, std::size_t row0, PinnedBuffer& staging,
                   DeviceBuffer& staging_dev) {
    const std::size_t cols = t.row_elems(), rows = t.rows();
    const std::size_t stride = ggml_row_bytes(t.type, cols);
    const std::size_t chunk_rows = std::max<std::size_t>(1, (staging.bytes() / 4) / cols);
    for (std::size_t r = 0; r < rows; r += chunk_rows) {
      const std::size_t n = std::min(chunk_rows, rows - r);
      float* h = staging.as<float>();
      for (std::size_t i = 0; i < n; ++i) dequantize_row(t.type, t.data + (r + i) * stride, h + i * cols, cols);
      check(cudaMemcpyAsync(staging_dev.get(), h, n * cols * 4, cudaMemcpyHostToDevice, stream), "uploading weights");
      convert_f32(dtype, staging_dev.as<float>(), m.buf.as<char>() + (row0 + r) * cols * dtype_size(dtype), n * cols,
                  stream);
      check(cudaStreamSynchronize(stream), "converting weights");
    }
  }

  DeviceBuffer upload_vector(const std::vector<float>& v, const std::string& what) {
    DeviceBuffer b(v.size() * 4, what);
    // On the model's stream, and finished before return: a plain cudaMemcpy runs on the legacy
    // stream, which the non-blocking model stream does not wait for, and may return before a
    // pageable source has landed.
    check(cudaMemcpyAsync(b.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice, stream),
          ("uploading " + what).c_str());
    check(cudaStreamSynchronize(stream), ("uploading " + what).c_str());
    return b;
  }

  std::vector<float> read_vector(const GgufFile& f, const std::string& name) {
    const GgufTensor& t = f.tensor(name);
    std::vector<float> out(t.elements());
    dequantize_row(t.type, t.data, out.data(), out.size());
    return out;
  }

  void load_file(const std::string& path) {
    host = std::make_unique<GgufModel>(
        path, GgufModelOptions{options.context, 1, MatmulPrecision::q8, options.layers});  // validates shapes and types
    cfg = host->config();
    info = host->info();
    init_shapes();
    GgufFile f(path);
    PinnedBuffer staging;
    staging.reserve(std::size_t(16) << 20, "weight upload staging");
    DeviceBuffer staging_dev(staging.bytes(), "weight upload staging");
    auto matrix = [&](std::initializer_list<std::string> names, const std::string& what) {
      std::size_t rows = 0, cols = 0;
      for (const std::string& n : names) {
        rows += f.tensor(n).rows();
        cols = f.tensor(n).row_elems();
      }
      Matrix2 m = alloc_matrix(rows, cols, what);
      std::size_t row0 = 0;
      for (const std::string& n : names) {
        upload_rows(f.tensor(n), m, row0, staging, staging_dev);
        row0 += f.tensor(n).rows();
      }
      return m;
    };
    token_embd = matrix({"token_embd.weight"}, "token_embd.weight");
    if (f.find_tensor("output.weight")) {
      output_own = matrix({"output.weight"}, "output.weight");
      output = &output_own;
    } else {
      output = &token_embd;
    }
    output_norm = upload_vector(read_vector(f, "output_norm.weight"), "output_norm.weight");
    for (int l = 0; l < cfg.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      Layer w;
      w.wqkv = matrix({p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"}, p + "attn_qkv");
      w.wo = matrix({p + "attn_output.weight"}, p + "attn_output.weight");
      w.wgu = matrix({p + "ffn_gate.weight", p + "ffn_up.weight"}, p + "ffn_gate_up");
      w.wdown = matrix({p + "ffn_down.weight"}, p + "ffn_down.weight");
      w.attn_norm = upload_vector(read_vector(f, p + "attn_norm.weight"), p + "attn_norm.weight");
      w.ffn_norm = upload_vector(read_vector(f, p + "ffn_norm.weight"), p + "ffn_norm.weight");
      if (f.find_tensor(p + "attn_q.bias")) {
        std::vector<float> b = read_vector(f, p + "attn_q.bias");
        for (const char* n : {"attn_k.bias", "attn_v.bias"}) {
          std::vector<float> part = read_vector(f, p + n);
          b.insert(b.end(), part.begin(), part.end());
        }
        w.bqkv = upload_vector(b, p + "attn_qkv.bias");
      }
      layers.push_back(std::move(w));
    }
    std::vector<float> factors(std::size_t(cfg.n_rot / 2), 1.0f);
    if (f.find_tensor("rope_freqs.weight")) factors = read_vector(f, "rope_freqs.weight");
    init_rope(factors);
  }

  void init_rope(const std::vector<float>& factors) {
    std::vector<float> freq;
    for (int i = 0; i < cfg.n_rot / 2; ++i) {
      freq.push_back(float(std::pow(double(cfg.rope_theta), -2.0 * i / cfg.n_rot) / factors[std::size_t(i)]));
    }
    rope_freq = upload_vector(freq, "rope frequencies");
  }

  void load_random(uint64_t seed) {
    init_shapes();
    uint64_t stream_id = 0;
    auto random_matrix = [&](std::size_t rows, std::size_t cols, const std::string& what, float scale) {
      Matrix2 m = alloc_matrix(rows, cols, what);
      fill_random(dtype, m.buf.get(), rows * cols, seed * 1000003u + stream_id++, scale, 0.0f, stream);
      return m;
    };
    auto constant = [&](std::size_t n, float value, const std::string& what) {
      DeviceBuffer b(n * 4, what);
      fill_random(DType::f32, b.get(), n, 0, 0.0f, value, stream);
      return b;
    };
    const std::size_t dim = cfg.dim, hidden = cfg.hidden_dim;
    token_embd = random_matrix(cfg.vocab, dim, "token_embd", 1.0f);
    output_own = random_matrix(cfg.vocab, dim, "output", 1.0f / std::sqrt(float(dim)));
    output = &output_own;
    output_norm = constant(dim, 1.0f, "output_norm");
    for (int l = 0; l < cfg.n_layers; ++l) {
      Layer w;
      w.wqkv = random_matrix(std::size_t(qkv_dim), dim, "attn_qkv", 1.0f / std::sqrt(float(dim)));
      w.wo = random_matrix(dim, std::size_t(q_dim), "attn_output", 1.0f / std::sqrt(float(q_dim)));
      w.wgu = random_matrix(2 * hidden, dim, "ffn_gate_up", 1.0f / std::sqrt(float(dim)));
      w.wdown = random_matrix(dim, hidden, "ffn_down", 1.0f / std::sqrt(float(hidden)));
      w.attn_norm = constant(dim, 1.0f, "attn_norm");
      w.ffn_norm = constant(dim, 1.0f, "ffn_norm");
      if (cfg.arch == "qwen2") {
        w.bqkv = DeviceBuffer(std::size_t(qkv_dim) * 4, "attn_qkv bias");
        fill_random(DType::f32, w.bqkv.get(), std::size_t(qkv_dim), seed * 1000003u + stream_id++, 0.1f, 0.0f, stream);
      }
      layers.push_back(std::move(w));
    }
    init_rope(std::vector<float>(std::size_t(cfg.n_rot / 2), 1.0f));
    check(cudaStreamSynchronize(stream), "generating random weights");
  }

  // --- forward pass ---

  void gemm(const Matrix2& w, const void* in, float* out, int n) {
    const float alpha = 1.0f, beta = 0.0f;
    // Row-major W [rows x cols] is column-major W^T; out^T [rows x n] = W [rows x cols] * in^T [cols x n].
    check_cublas(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(w.rows), n, int(w.cols), &alpha, w.buf.get(),
                              cublas_type(dtype), int(w.cols), in, cublas_type(dtype), int(w.cols), &beta, out,
                              CUDA_R_32F, int(w.rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }

  struct MetaView {
    const int32_t* tokens;
    const NodeMeta* meta;
    void* const* node_kv;
    const int32_t* anc;
    void* const* pages;
  };

  void forward(int n, int splits, const MetaView& mv) {
    const LlamaConfig& c = cfg;
    const std::size_t act = dtype_size(dtype);
    (void)act;
    embed(dtype, token_embd.buf.get(), mv.tokens, x.as<float>(), n, c.dim, stream);
    for (int l = 0; l < c.n_layers; ++l) {
      const Layer& w = layers[std::size_t(l)];
      rmsnorm(dtype, x.as<float>(), w.attn_norm.as<float>(), xn.get(), n, c.dim, c.norm_eps, stream);
      gemm(w.wqkv, xn.get(), qkv.as<float>(), n);
      const QkvShape shape{c.n_heads, c.n_kv_heads, c.head_dim, c.n_rot, l, c.n_layers, c.rope_neox};
      qkv_post(qkv.as<float>(), w.bqkv.get() ? w.bqkv.as<float>() : nullptr, rope_freq.as<float>(), mv.meta, mv.node_kv,
               kv_f32, shape, n, stream);
      AttentionArgs a{};
      a.q = qkv.as<float>();
      a.q_stride = qkv_dim;
      a.meta = mv.meta;
      a.anc = mv.anc;
      a.node_kv = mv.node_kv;
      a.pages = mv.pages;
      a.partial = partial.as<float>();
      a.out = att.get();
      a.n = n;
      a.n_heads = c.n_heads;
      a.n_kv_heads = c.n_kv_heads;
      a.head_dim = c.head_dim;
      a.layer = l;
      a.n_layers = c.n_layers;
      a.page_tokens = options.page_tokens;
      a.splits = splits;
      a.kv_f32 = kv_f32;
      a.out_type = dtype;
      attention(a, stream);
      gemm(w.wo, att.get(), proj.as<float>(), n);
      add_inplace(x.as<float>(), proj.as<float>(), std::size_t(n) * c.dim, stream);
      rmsnorm(dtype, x.as<float>(), w.ffn_norm.as<float>(), xn.get(), n, c.dim, c.norm_eps, stream);
      gemm(w.wgu, xn.get(), gu.as<float>(), n);
      swiglu(dtype, gu.as<float>(), hact.get(), n, c.hidden_dim, stream);
      gemm(w.wdown, hact.get(), proj.as<float>(), n);
      add_inplace(x.as<float>(), proj.as<float>(), std::size_t(n) * c.dim, stream);
    }
    rmsnorm(dtype, x.as<float>(), output_norm.as<float>(), xn.get(), n, c.dim, c.norm_eps, stream);
    gemm(*output, xn.get(), logits.as<float>(), n);
  }

  void reserve_scratch(int n, std::size_t partial_floats) {
    bool moved = false;
    if (n > cap_nodes) {
      int cap = std::max(1, cap_nodes);
      while (cap < n) cap *= 2;
      const std::size_t N = std::size_t(cap), act = dtype_size(dtype);
      const LlamaConfig& c = cfg;
      x.alloc(N * c.dim * 4, "activations (residual)");
      xn.alloc(N * std::max(c.dim, q_dim) * act, "activations (normalized)");
      qkv.alloc(N * qkv_dim * 4, "activations (q/k/v)");
      att.alloc(N * q_dim * act, "activations (attention output)");
      proj.alloc(N * c.dim * 4, "activations (projection)");
      gu.alloc(N * 2 * c.hidden_dim * 4, "activations (gate/up)");
      hact.alloc(N * c.hidden_dim * act, "activations (SwiGLU)");
      logits.alloc(N * c.vocab * 4, "logits");
      logits_host.reserve(N * c.vocab * 4, "logits");
      cap_nodes = cap;
      moved = true;
    }
    if (partial_floats > cap_partial) {
      partial.alloc(partial_floats * 4, "attention partial results");
      cap_partial = partial_floats;
      moved = true;
    }
    if (moved) drop_graphs();
  }

  // Captures the single-node forward pass. A capture can fail where eager launches work (a cuBLAS
  // build that allocates inside capture, a driver without graph support): then graphs are turned
  // off for this model, once and with a message, and decoding goes on eagerly.
  cudaGraphExec_t capture_decode_step(int splits, const MetaView& mv) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    std::string why;
    cudaError_t st = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    if (st == cudaSuccess) {
      try {
        forward(1, splits, mv);
      } catch (const std::exception& e) {
        why = e.what();
      }
      const cudaError_t end = cudaStreamEndCapture(stream, &graph);
      if (why.empty() && end != cudaSuccess) why = std::string("ending capture: ") + cudaGetErrorString(end);
      if (why.empty() && graph) {
        st = cudaGraphInstantiate(&exec, graph, 0);
        if (st != cudaSuccess) why = std::string("instantiating: ") + cudaGetErrorString(st);
      }
      if (graph) cudaGraphDestroy(graph);
    } else {
      why = std::string("beginning capture: ") + cudaGetErrorString(st);
    }
    if (!why.empty() || !exec) {
      (void)cudaGetLastError();  // capture errors are not sticky; clear the last-error slot
      if (exec) cudaGraphExecDestroy(exec);
      options.graphs = false;
      std::cerr << "cuda model: CUDA graph capture failed (" << (why.empty() ? "no graph" : why)
                << "); decoding without graphs\n";
      return nullptr;
    }
    ++captures;
    return exec;
  }

  // Pages for rows [length, end) of `s`, none of them shared: a shared page is copied first.
  void ensure_writable(CudaSequence& s, std::size_t length, std::size_t end) {
    const std::size_t P = std::size_t(options.page_tokens);
    const std::size_t need = (end + P - 1) / P;
    const std::size_t first = length / P;  // the page the next token lands in
    for (std::size_t i = first; i < need; ++i) {
      if (i >= s.pages.size()) {
        s.pages.push_back(pages->acquire());
      } else if (pages->refs(s.pages[i]) > 1) {
        // Copy on write: the shared page stays with the other sequences.
        const int fresh = pages->acquire();
        check(cudaMemcpyAsync(pages->base(fresh), pages->base(s.pages[i]), pages->page_bytes(),
                              cudaMemcpyDeviceToDevice, stream),
              "copying a shared KV page");
        pages->release(s.pages[i]);
        s.pages[i] = fresh;
      }
    }
  }

  void truncate_pages(CudaSequence& s, std::size_t length) {
    const std::size_t P = std::size_t(options.page_tokens);
    const std::size_t keep = (length + P - 1) / P;
    while (s.pages.size() > keep) {
      pages->release(s.pages.back());
      s.pages.pop_back();
    }
  }
};

CudaModel::CudaModel() : impl_(std::make_unique<Impl>()) {}

CudaModel::CudaModel(const std::string& path, CudaModelOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->init_device();
  impl_->load_file(path);
  impl_->info.name = std::filesystem::path(path).filename().string() + " (cuda:" + std::to_string(options.device) +
                     ", " + dtype_name(impl_->dtype) + ")";
}

std::unique_ptr<CudaModel> CudaModel::random(const LlamaConfig& config, uint64_t seed, CudaModelOptions options) {
  std::unique_ptr<CudaModel> m(new CudaModel());
  Impl& d = *m->impl_;
  d.options = options;
  d.cfg = config;
  if (d.cfg.n_rot == 0) d.cfg.n_rot = d.cfg.head_dim;
  d.init_device();
  d.load_random(seed);
  d.info.name = "random(" + config.arch + ",dim=" + std::to_string(config.dim) +
                ",layers=" + std::to_string(config.n_layers) + ",seed=" + std::to_string(seed) + ")";
  d.info.architecture = config.arch;
  d.info.vocab_size = config.vocab;
  d.info.context_length = options.context;
  return m;
}

CudaModel::~CudaModel() {
  // The sequences' pending rows are device buffers that queued work may still read, and their pages
  // live in impl_: finish the work and free the sequences while the model's device state exists.
  if (impl_->stream) {
    (void)cudaSetDevice(impl_->options.device);
    (void)cudaStreamSynchronize(impl_->stream);
  }
  clear_sequences();
}

const ModelInfo& CudaModel::info() const { return impl_->info; }
const LlamaConfig& CudaModel::config() const { return impl_->cfg; }
std::size_t CudaModel::weight_bytes() const { return impl_->weight_bytes; }
std::size_t CudaModel::kv_bytes_per_token() const { return impl_->row_bytes; }
std::size_t CudaModel::kv_bytes_in_use() const { return impl_->pages->pages_in_use() * impl_->pages->page_bytes(); }
std::size_t CudaModel::bytes_per_token(std::size_t length) const {
  // Every matrix once (the embedding table only for its one row, unless it is also the output)...
  const Impl& d = *impl_;
  std::size_t bytes = d.weight_bytes;
  if (d.output != &d.token_embd) bytes -= d.token_embd.buf.bytes() - d.token_embd.cols * dtype_size(d.dtype);
  // ...plus every committed key and value once per query head group.
  return bytes + length * d.row_bytes;
}
const float* CudaModel::device_logits() const { return impl_->logits.as<float>(); }
int64_t CudaModel::graph_replays() const { return impl_->replays; }
int64_t CudaModel::graph_captures() const { return impl_->captures; }

std::string CudaModel::token_text(TokenId token) const {
  if (impl_->host) return impl_->host->token_text(token);
  if (token < 0 || token >= impl_->cfg.vocab)
    fail(ErrorCode::invalid_argument, "cuda model: token " + std::to_string(token) + " out of range");
  std::string placeholder = "<";  // built step by step: GCC 12 warns (-Wrestrict) on "<" + s + ">"
  placeholder += std::to_string(token);
  placeholder += '>';
  return placeholder;
}
bool CudaModel::has_tokenizer() const { return impl_->host && impl_->host->has_tokenizer(); }
std::vector<TokenId> CudaModel::tokenize(std::string_view text, bool add_special) const {
  return impl_->host ? impl_->host->tokenize(text, add_special) : LanguageModel::tokenize(text, add_special);
}
std::string CudaModel::detokenize(std::span<const TokenId> tokens) const {
  return impl_->host ? impl_->host->detokenize(tokens) : LanguageModel::detokenize(tokens);
}
std::optional<Matrix> CudaModel::token_embeddings() const {
  if (impl_->host) return impl_->host->token_embeddings();
  return std::nullopt;
}

std::unique_ptr<SequenceStorage> CudaModel::new_storage() { return std::make_unique<CudaSequence>(*impl_); }

std::unique_ptr<SequenceStorage> CudaSequence::fork() {
  auto child = std::make_unique<CudaSequence>(model_);
  child->pages = pages;
  for (int p : child->pages) model_.pages->retain(p);
  return child;
}

void CudaSequence::release() {
  CudaModel::Impl& d = model_;
  d.use_device();
  // Kernels still queued may read these pages or rows: let them finish before they are reused.
  check(cudaStreamSynchronize(d.stream), "finishing work before freeing a sequence");
  for (int p : pages) d.pages->release(p);
  pages.clear();
}

void CudaSequence::truncate(std::size_t length) { model_.truncate_pages(*this, length); }

void CudaSequence::commit(std::size_t length, std::span<const int32_t> path) {
  CudaModel::Impl& d = model_;
  d.use_device();
  const std::size_t L = length, P = std::size_t(d.options.page_tokens);
  d.ensure_writable(*this, L, L + path.size());
  const int L2 = d.cfg.n_layers * 2;
  const std::size_t count = path.size() * std::size_t(L2);
  const std::size_t row = std::size_t(d.kv_dim) * d.kv_elem;
  check(cudaEventSynchronize(d.commit_free), "waiting for the previous commit's upload");
  d.commit_host.reserve(count * 2 * sizeof(void*), "commit copy list");
  d.commit_dev.reserve(count * 2 * sizeof(void*), "commit copy list");
  void** dst = d.commit_host.as<void*>();
  void** src = dst + count;
  std::size_t k = 0;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::size_t pos = L + i;
    char* page = static_cast<char*>(d.pages->base(pages[pos / P]));
    const char* pend = pending_kv.as<char>() + std::size_t(path[i]) * d.row_bytes;
    for (int j = 0; j < L2; ++j, ++k) {
      dst[k] = page + (std::size_t(j) * P + pos % P) * row;
      src[k] = const_cast<char*>(pend) + std::size_t(j) * row;
    }
  }
  check(cudaMemcpyAsync(d.commit_dev.get(), dst, count * 2 * sizeof(void*), cudaMemcpyHostToDevice, d.stream),
        "uploading the commit list");
  void** ddst = d.commit_dev.as<void*>();
  copy_rows(ddst, ddst + count, int(count), int(row), d.stream);
  // After the copy kernel, which reads commit_dev: the next commit may reallocate it.
  check(cudaEventRecord(d.commit_free, d.stream), "recording an event");
}

void CudaModel::forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) {
  Impl& d = *impl_;
  d.use_device();
  const LlamaConfig& c = d.cfg;
  const std::size_t P = std::size_t(d.options.page_tokens);

  // Host metadata: tokens, NodeMeta, node K/V row pointers, ancestor lists, page pointer lists.
  std::size_t N = 0, anc_total = 0, page_total = 0;
  int max_total = 1;
  for (std::size_t t = 0; t < batch.size(); ++t) {
    const CudaSequence& s = static_cast<const CudaSequence&>(*batch[t].storage);
    N += batch[t].nodes.size();
    for (int32_t dep : batch[t].depth) {
      anc_total += std::size_t(dep) + 1;
      max_total = std::max(max_total, int(batch[t].committed) + dep + 1);
    }
    page_total += s.pages.size();
  }
  if (N == 0) {
    for (auto& m : out) m.resize(0, c.vocab);
    return;
  }
  // The attention grid holds nodes in a 16-bit launch dimension.
  if (N > 65535) {
    fail(ErrorCode::invalid_argument, "cuda model: one evaluation of " + std::to_string(N) +
                                          " nodes; at most 65535 per call (append a long prompt in pieces)");
  }
  const std::size_t off_meta = align16(N * 4), off_kv = off_meta + align16(N * sizeof(NodeMeta)),
                    off_anc = off_kv + align16(N * sizeof(void*)), off_pages = off_anc + align16(anc_total * 4),
                    meta_bytes = off_pages + std::max<std::size_t>(page_total, 1) * sizeof(void*);
  check(cudaEventSynchronize(d.meta_free), "waiting for the previous metadata upload");
  bool moved = d.meta_host.reserve(std::max<std::size_t>(meta_bytes, 1u << 16), "evaluation metadata");
  moved |= d.meta_dev.reserve(d.meta_host.bytes(), "evaluation metadata");
  if (moved) d.drop_graphs();
  char* h = d.meta_host.as<char>();
  auto* tokens = reinterpret_cast<int32_t*>(h);
  auto* meta = reinterpret_cast<NodeMeta*>(h + off_meta);
  auto* node_kv = reinterpret_cast<void**>(h + off_kv);
  auto* anc = reinterpret_cast<int32_t*>(h + off_anc);
  auto* page_ptrs = reinterpret_cast<void**>(h + off_pages);
  std::size_t node = 0, a = 0, pg = 0;
  for (std::size_t t = 0; t < batch.size(); ++t) {
    CudaSequence& s = static_cast<CudaSequence&>(*batch[t].storage);
    const std::size_t count = batch[t].nodes.size();
    s.pending_kv.reserve(std::max<std::size_t>(count, 1) * d.row_bytes,
                         "pending K/V rows of sequence " + std::to_string(batch[t].seq));
    const std::size_t first = node, page_off = pg;
    for (int p : s.pages) page_ptrs[pg++] = d.pages->base(p);
    for (std::size_t i = 0; i < count; ++i, ++node) {
      tokens[node] = batch[t].nodes[i].token;
      const int dep = batch[t].depth[i];
      const int32_t committed = int32_t(batch[t].committed);
      meta[node] = NodeMeta{committed, committed + dep, dep + 1, int32_t(a), int32_t(page_off), 0};
      node_kv[node] = s.pending_kv.as<char>() + i * d.row_bytes;
      const std::size_t a0 = a;
      for (int32_t j = int32_t(i); j >= 0; j = batch[t].nodes[std::size_t(j)].parent) anc[a++] = int32_t(first) + j;
      std::reverse(anc + a0, anc + a);
    }
  }
  // Splits: chunks of about split_tokens keys, a power of two (few graph variants), capped so that
  // the partial results stay small when many nodes already fill the device.
  int splits = 1;
  while (splits < 64 && splits * d.options.split_tokens < max_total) splits *= 2;
  while (splits > 1 && std::size_t(splits) * N * std::size_t(c.n_heads) > 16384) splits /= 2;
  d.reserve_scratch(int(N), N * std::size_t(c.n_heads) * std::size_t(splits) * std::size_t(c.head_dim + 2));

  check(cudaMemcpyAsync(d.meta_dev.get(), h, meta_bytes, cudaMemcpyHostToDevice, d.stream),
        "uploading evaluation metadata");
  check(cudaEventRecord(d.meta_free, d.stream), "recording an event");
  char* dm = d.meta_dev.as<char>();
  const Impl::MetaView mv{reinterpret_cast<const int32_t*>(dm), reinterpret_cast<const NodeMeta*>(dm + off_meta),
                          reinterpret_cast<void* const*>(dm + off_kv), reinterpret_cast<const int32_t*>(dm + off_anc),
                          reinterpret_cast<void* const*>(dm + off_pages)};
  if (N == 1 && d.options.graphs) {
    // The single-node layout is the same at every step (only the page list, last, grows).
    auto it = d.graphs.find(splits);
    if (it == d.graphs.end()) {
      if (cudaGraphExec_t exec = d.capture_decode_step(splits, mv)) it = d.graphs.emplace(splits, exec).first;
    }
    if (it != d.graphs.end()) {
      check(cudaGraphLaunch(it->second, d.stream), "launching the decode graph");
      ++d.replays;
    } else {
      d.forward(1, splits, mv);  // capture failed: graphs are off for this model now
    }
  } else {
    d.forward(int(N), splits, mv);
  }
  check(cudaMemcpyAsync(d.logits_host.get(), d.logits.get(), N * std::size_t(c.vocab) * 4, cudaMemcpyDeviceToHost,
                        d.stream),
        "copying logits");
  check(cudaStreamSynchronize(d.stream), "evaluating");
  (void)P;

  const float* lh = d.logits_host.as<float>();
  node = 0;
  for (std::size_t t = 0; t < batch.size(); ++t) {
    const std::size_t count = batch[t].nodes.size();
    const std::size_t rows = batch[t].last_logits_only ? 1 : count;  // a prefill wants the last row only
    out[t].resize(int(rows), c.vocab);
    std::memcpy(out[t].data.data(), lh + (node + count - rows) * std::size_t(c.vocab), rows * std::size_t(c.vocab) * 4);
    node += count;
  }
}

}  // namespace decodelab
