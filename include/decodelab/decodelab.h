/*
 * decodelab C API: decodelab's samplers, sampler chains, speculative verification rules and
 * decoders for other inference engines (HF transformers through ctypes/cffi, llama.cpp, your own).
 *
 * Link libdecodelab.so (CMake: find_package(decodelab) and decodelab::decodelab; pkg-config:
 * decodelab) and include <decodelab/decodelab.h>. The header is C99 and C++ alike.
 *
 * What it covers
 *   - Sampler chains named by spec strings, "top_k(k=40),top_p(p=0.95),temperature(t=0.7)",
 *     used in the shape of llama.cpp's llama_sampler: apply / accept / reset / clone / free.
 *     decodelab_chain_apply() processes one logits array in place.
 *   - Sampling a token from a chain with Philox4x32-10 keyed by (seed, stream, step), the same
 *     numbers decodelab's own decoders and cuRAND's curand_init(seed, stream, step << 32) give.
 *   - The speculative verification rules (decodelab_verify): given the target law p, the draft
 *     law q and the drafted candidates, accept one or draw from the residual, keeping the output
 *     exactly p-distributed. An engine that drafts and scores on its own verifies with these.
 *   - The catalogue: every sampler and decoder by name with its parameters' documentation.
 *   - Models (since 0.2): loaded from a model spec (a GGUF file on the CPU, explicit JSON tables),
 *     or the caller's own behind callbacks, and any registered decoder run over them
 *     (decodelab_generate), e.g. SpecTr with the caller's model as target or draft.
 *
 * Errors
 *   Every function that can fail returns a decodelab_status: DECODELAB_OK (0) or an error code.
 *   On an error, decodelab_last_error() returns a message naming the function and what was wrong
 *   ("decodelab_chain_apply: logits is NULL"); it is thread-local and stays valid until the next
 *   failing call on the same thread. Successful calls leave it as it was. Nothing aborts and no
 *   C++ exception leaves the library; output arguments are written only on success.
 *
 * Ownership
 *   A decodelab_chain is created by decodelab_chain_create / _from_params / _clone and owned by
 *   the caller until decodelab_chain_free; a decodelab_model likewise, from decodelab_model_load
 *   or _from_callbacks to decodelab_model_free. Arrays passed in (logits, p, q, candidates, uniforms)
 *   are borrowed for the duration of the call only. Strings returned by the catalogue functions,
 *   decodelab_version() and decodelab_status_name() belong to the library and live as long as it
 *   is loaded; decodelab_last_error()'s string lives until that thread's next failing call.
 *
 * Threads
 *   Every function may be called from any thread. A chain has state (dist's step counter, which
 *   accept() advances), so one chain must not be used by two threads at once: give each thread or
 *   each sequence its own chain (decodelab_chain_clone). Different chains are independent. The
 *   catalogue, verification and random-number functions keep no state and are safe to call
 *   concurrently.
 *
 * Example: sample a token from a chain, then tell the chain which token was emitted.
 *
 *   decodelab_chain* chain = NULL;
 *   if (decodelab_chain_create("top_k(k=40),temperature(t=0.7)", &chain) != DECODELAB_OK) {
 *     fprintf(stderr, "%s\n", decodelab_last_error());
 *     return 1;
 *   }
 *   int32_t token;
 *   if (decodelab_chain_sample(chain, logits, n_vocab, seed, DECODELAB_STREAM_SAMPLE, position,
 *                              &token) != DECODELAB_OK) { ... }
 *   decodelab_chain_accept(chain, token);
 *   decodelab_chain_free(chain);
 */
#ifndef DECODELAB_DECODELAB_H
#define DECODELAB_DECODELAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define DECODELAB_API __attribute__((visibility("default")))
#else
#define DECODELAB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Every enum below ends with a *_MAX_ENUM = 0x7FFFFFFF member that is never a valid value: it
 * keeps the enums 32 bits wide in every compiler, and makes any value in [0, 0x7FFFFFFF] that a C
 * caller passes a well-defined one for the library to reject with DECODELAB_ERR_INVALID_ARGUMENT. */

/* ---------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------- */

/* The library's release (the CMake project version). */
#define DECODELAB_VERSION_MAJOR 0
#define DECODELAB_VERSION_MINOR 3
#define DECODELAB_VERSION_PATCH 0
/* The C ABI's version: it changes whenever a function, struct or enum value of this header changes
 * incompatibly, and is the shared library's SONAME version (libdecodelab.so.1). */
#define DECODELAB_ABI_VERSION 1

/* "0.3.0": the version of the library actually loaded, which may differ from the header's. */
DECODELAB_API const char* decodelab_version(void);
/* DECODELAB_ABI_VERSION of the library actually loaded; compare it with the header's. */
DECODELAB_API uint32_t decodelab_abi_version(void);

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

typedef enum decodelab_status {
  DECODELAB_OK = 0,
  DECODELAB_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a size that does not fit, a value out of range */
  DECODELAB_ERR_NOT_FOUND = 2,        /* an unknown sampler, decoder or component index */
  DECODELAB_ERR_BAD_FORMAT = 3,       /* a spec string that does not parse */
  DECODELAB_ERR_UNSUPPORTED = 4,      /* valid input the library does not implement here */
  DECODELAB_ERR_NUMERIC = 5,          /* NaN or +inf logits, a distribution with no mass */
  DECODELAB_ERR_OUT_OF_MEMORY = 6,    /* an allocation failed */
  DECODELAB_ERR_INTERNAL = 7,         /* a broken invariant: a bug in decodelab, please report it */
  DECODELAB_ERR_CALLBACK = 8,         /* a callback of a caller-supplied model returned an error (since 0.2) */
  DECODELAB_STATUS_MAX_ENUM = 0x7FFFFFFF
} decodelab_status;

/* "ok", "invalid_argument", ...; "unknown" for a value that is not a decodelab_status. */
DECODELAB_API const char* decodelab_status_name(decodelab_status status);
/* The message of this thread's last failed call ("" when none has failed). Never NULL. Read it
 * right after the failing call: the next failure on this thread overwrites it. */
DECODELAB_API const char* decodelab_last_error(void);

/* ---------------------------------------------------------------------------------------------
 * Sampler chains
 *
 * A chain is a list of samplers applied in order to one position's logits. Truncation samplers
 * (top_k, top_p, min_p, typical, top_w) drop tokens and never change the kept tokens' relative
 * logits; temperature rescales; terminal samplers (greedy, dist) select one token. Equal logits
 * rank by token id, lowest first. See decodelab_component_count(DECODELAB_KIND_SAMPLER, ...) for the
 * samplers and their parameters. top_w with gamma > 0 needs the model's token embeddings, which
 * this API cannot take: such a chain fails on apply with DECODELAB_ERR_INVALID_ARGUMENT, while
 * top_w(gamma=0) works on logits alone.
 * ------------------------------------------------------------------------------------------- */

typedef struct decodelab_chain decodelab_chain;

/* Creates a chain from a spec: "top_k(k=40),temperature(t=0.7)"; "" is the empty chain, which
 * leaves logits as they are. Errors: BAD_FORMAT (unbalanced parentheses, a malformed part),
 * NOT_FOUND (an unknown sampler), INVALID_ARGUMENT (an unknown or out-of-range parameter). */
DECODELAB_API decodelab_status decodelab_chain_create(const char* spec, decodelab_chain** out);

/* Creates the chain decodelab's sampling decoders build from their sampling parameters:
 * "temperature=0.7,top_k=40,top_p=0.95,min_p=0.05,typical_p=1" (each optional; temperature 0 is
 * greedy), in llama.cpp's default order: top_k, typical_p, top_p, min_p, then temperature.
 * "chain=<spec>" gives an explicit chain instead. */
DECODELAB_API decodelab_status decodelab_chain_from_params(const char* params, decodelab_chain** out);

/* An independent copy with the same samplers in the same state (dist continues from the same step). */
DECODELAB_API decodelab_status decodelab_chain_clone(const decodelab_chain* chain, decodelab_chain** out);

/* Frees a chain; NULL is allowed and does nothing. */
DECODELAB_API void decodelab_chain_free(decodelab_chain* chain);

/* The number of samplers in the chain. */
DECODELAB_API decodelab_status decodelab_chain_length(const decodelab_chain* chain, size_t* out);

/* The chain's description, "top_k(k=40) -> temperature(t=0.7)", written NUL-terminated into buf.
 * *length receives the description's length without the NUL. Pass buf = NULL and capacity = 0 to
 * ask for the length only; a buf of fewer than *length + 1 bytes is INVALID_ARGUMENT. */
DECODELAB_API decodelab_status decodelab_chain_describe(const decodelab_chain* chain, char* buf, size_t capacity,
                                                        size_t* length);

/* Applies the chain to one position's logits, in place. logits has n_vocab entries (token id =
 * index), n_vocab in [1, INT32_MAX]. -inf marks an excluded token; NaN or +inf anywhere, or every
 * entry -inf, is DECODELAB_ERR_NUMERIC. On return, tokens the chain dropped are -inf and kept
 * tokens hold their processed logits (divided by the temperature, for instance), so
 * softmax(logits) is the chain's distribution unless a terminal sampler selected a token.
 * *selected receives that token, or -1 when no sampler of the chain selects one. selected may be
 * NULL when the caller does not need it. On an error, logits are left unchanged. */
DECODELAB_API decodelab_status decodelab_chain_apply(decodelab_chain* chain, float* logits, size_t n_vocab,
                                                     int32_t* selected);

/* One candidate token: its id, its logit and (when computed) its probability. The layout is
 * llama.cpp's llama_token_data, field for field. */
typedef struct decodelab_token_data {
  int32_t id;
  float logit;
  float p;
} decodelab_token_data;

/* A caller's candidate array, laid out as llama.cpp's llama_token_data_array: `data` holds `size`
 * entries; `selected` is the index in data of a chosen token or -1; `sorted` says data is in
 * descending logit order. */
typedef struct decodelab_candidates {
  decodelab_token_data* data;
  size_t size;
  int64_t selected;
  bool sorted;
} decodelab_candidates;

/* Applies the chain to the caller's candidates in place, nothing copied, as llama.cpp's samplers
 * process a llama_token_data_array. On entry data[0, size) holds token ids (>= 0, any order, any
 * subset of the vocabulary, each id at most once) and logits (-inf excludes a token). On return
 * data[0, size) are the kept candidates with their processed logits, in the chain's order, size
 * is their count, sorted says whether they are in descending logit order, and selected is the
 * index of the token a terminal sampler chose, or -1. Entries past the new size are unspecified.
 * The same logits give the same kept set, logits and selected token as decodelab_chain_apply.
 * Errors: NUMERIC (a NaN or +inf logit, or no logit above -inf), INVALID_ARGUMENT (a negative id,
 * data NULL with size > 0); these are found before anything is written. A sampler that fails
 * part way (an error from the chain itself) may leave data reordered, with size and selected
 * unchanged. */
DECODELAB_API decodelab_status decodelab_chain_apply_candidates(decodelab_chain* chain,
                                                                decodelab_candidates* candidates);

/* The chain's distribution over the vocabulary: probs[i] = softmax of the kept logits, 0 for a
 * dropped token, a point mass when a terminal sampler selected a token. probs has n_vocab entries
 * and may be logits itself; otherwise logits are not modified. */
DECODELAB_API decodelab_status decodelab_chain_probs(decodelab_chain* chain, const float* logits, size_t n_vocab,
                                                     float* probs);

/* Applies the chain and draws a token from its distribution by inverse CDF with the uniform
 * decodelab_philox_uniforms(seed, stream, step) gives (the first number of that block). With
 * stream DECODELAB_STREAM_SAMPLE and step = the position being decided this is exactly decodelab's
 * `sample` decoder, so an engine reproduces its runs token for token. Does not call accept(). */
DECODELAB_API decodelab_status decodelab_chain_sample(decodelab_chain* chain, const float* logits, size_t n_vocab,
                                                      uint64_t seed, uint64_t stream, uint64_t step, int32_t* token);

/* Tells the chain which token was emitted at this position (stateful samplers update: dist
 * advances its step). token must be >= 0. */
DECODELAB_API decodelab_status decodelab_chain_accept(decodelab_chain* chain, int32_t token);

/* Returns every sampler of the chain to its state at creation. */
DECODELAB_API decodelab_status decodelab_chain_reset(decodelab_chain* chain);

/* Gives the chain the token embeddings of the model whose logits it will process, for samplers
 * that need the vocabulary's geometry: Top-W with gamma > 0 (others ignore it). embeddings is
 * row-major [n_vocab x dim], row = token id, and is copied during the call; the chain must then
 * see only ids below n_vocab. Errors: INVALID_ARGUMENT (NULL, a zero size), NUMERIC (a NaN or
 * infinite entry). For a model decodelab loaded, decodelab_chain_bind_model does this. */
DECODELAB_API decodelab_status decodelab_chain_bind_embeddings(decodelab_chain* chain, const float* embeddings,
                                                               size_t n_vocab, size_t dim);

/* ---------------------------------------------------------------------------------------------
 * Random numbers: Philox4x32-10 keyed by (seed, stream, step), in cuRAND's layout
 *
 * Block `step` of stream `stream` is curand_init(seed, stream, step << 32): 2^32 numbers that no
 * other (stream, step) shares. decodelab's decoders name streams by purpose, plus a sub-stream
 * (a draft candidate, a particle) in the bits above the purpose: decodelab_stream(purpose, sub).
 * ------------------------------------------------------------------------------------------- */

typedef enum decodelab_stream_purpose {
  DECODELAB_STREAM_SAMPLE = 0,   /* plain sampling of the next token */
  DECODELAB_STREAM_DRAFT = 1,    /* sampling drafts from the draft model */
  DECODELAB_STREAM_ACCEPT = 2,   /* accept / reject uniforms in verification (sub-stream: candidate) */
  DECODELAB_STREAM_RESIDUAL = 3, /* the draw from the residual after every rejection */
  DECODELAB_STREAM_RESAMPLE = 4, /* particle resampling (SMC) */
  DECODELAB_STREAM_PROPOSAL = 5, /* decoder-specific proposals */
  DECODELAB_STREAM_USER = 16,    /* first purpose id free for the caller's own streams */
  DECODELAB_STREAM_MAX_ENUM = 0x7FFFFFFF
} decodelab_stream_purpose;

/* The stream id of a purpose and sub-stream: purpose + (substream << 8). */
DECODELAB_API uint64_t decodelab_stream(decodelab_stream_purpose purpose, uint64_t substream);

/* Writes the first n uniforms in (0, 1) of block (seed, stream, step), each from 53 random bits of
 * two Philox words (cuRAND's curand_uniform2_double layout). n = 0 writes nothing; out may then be
 * NULL. */
DECODELAB_API decodelab_status decodelab_philox_uniforms(uint64_t seed, uint64_t stream, uint64_t step, double* out,
                                                         size_t n);

/* ---------------------------------------------------------------------------------------------
 * Speculative verification
 *
 * One rule decides one position. p is the target's distribution and q the draft's (both
 * normalized, n_vocab entries, finite and >= 0; after the same sampler chain, if any, since the
 * guarantee holds for the processed laws). candidates are the drafted tokens in the order the rule
 * consumes them; accept_u holds one uniform in (0, 1] per candidate and residual_u one for the
 * draw after every candidate is rejected. The decided token is then exactly p-distributed,
 * provided the candidates were drawn the way the rule assumes:
 *
 *   DECODELAB_VERIFY_RRS_IID     candidates i.i.d. from q. One candidate is standard speculative
 *                                sampling (Leviathan et al.; Chen et al.): accept x when
 *                                u * q(x) <= p(x), else draw from norm((p - q)_+). Several are
 *                                SpecInfer's recursive rejection sampling.
 *   DECODELAB_VERIFY_RRS_WOR     candidates drawn from q without replacement, in draw order (Sequoia).
 *   DECODELAB_VERIFY_KSEQ        candidates i.i.d. from q, SpecTr's K-SEQ with division factor rho
 *                                (decodelab_kseq_rho gives the smallest valid one).
 *   DECODELAB_VERIFY_TARGET_ONLY candidates chosen by any rule that does not look at the uniforms
 *                                (n-gram lookup, top-k of q): accept x with probability p(x), else
 *                                remove x from p. q is not read and may be NULL.
 * ------------------------------------------------------------------------------------------- */

typedef enum decodelab_verify_rule {
  DECODELAB_VERIFY_RRS_IID = 0,
  DECODELAB_VERIFY_RRS_WOR = 1,
  DECODELAB_VERIFY_KSEQ = 2,
  DECODELAB_VERIFY_TARGET_ONLY = 3,
  DECODELAB_VERIFY_MAX_ENUM = 0x7FFFFFFF
} decodelab_verify_rule;

typedef struct decodelab_verify_result {
  int32_t accepted; /* index into candidates of the accepted one; -1 when the token is the residual's */
  int32_t token;    /* the decided token */
} decodelab_verify_result;

/* Decides one position. n_candidates may be 0 (the token is then drawn from p with residual_u).
 * rho is read by DECODELAB_VERIFY_KSEQ only (finite, >= 1) and ignored by the other rules. */
DECODELAB_API decodelab_status decodelab_verify(decodelab_verify_rule rule, const float* p, const float* q,
                                                size_t n_vocab, const int32_t* candidates, size_t n_candidates,
                                                const double* accept_u, double residual_u, double rho,
                                                decodelab_verify_result* out);

/* decodelab_verify with the uniforms decodelab's speculative decoders draw at stream position
 * `position`: candidate i's from stream decodelab_stream(DECODELAB_STREAM_ACCEPT, i), the
 * residual's from decodelab_stream(DECODELAB_STREAM_RESIDUAL, 0), both at step = position. */
DECODELAB_API decodelab_status decodelab_verify_seeded(decodelab_verify_rule rule, const float* p, const float* q,
                                                       size_t n_vocab, const int32_t* candidates, size_t n_candidates,
                                                       double rho, uint64_t seed, uint64_t position,
                                                       decodelab_verify_result* out);

/* The smallest K-SEQ division factor rho in [1, k] that keeps the residual nonnegative, for k
 * i.i.d. drafts from q against p. k >= 1. */
DECODELAB_API decodelab_status decodelab_kseq_rho(const float* p, const float* q, size_t n_vocab, int32_t k,
                                                  double* rho);

/* The residual law out = norm((p - q)_+) that speculative sampling draws from after a rejection.
 * *mass receives sum (p - q)_+ before normalizing (may be NULL); when it is 0 (p == q) out is
 * all zero and the caller should draw from p instead. out has n_vocab entries. */
DECODELAB_API decodelab_status decodelab_residual(const float* p, const float* q, size_t n_vocab, float* out,
                                                  double* mass);

/* ---------------------------------------------------------------------------------------------
 * Models (since 0.2)
 *
 * A decodelab_model is a language model decodelab's decoders can run over: one decodelab loads
 * from a model spec (decodelab_model_load: "gguf(path=model.gguf)" on the CPU, "table(file=t.json)"
 * explicit tables, "table(vocab=32,order=2,seed=1)" analytic tables), or one whose forward pass
 * and KV cache are the caller's, behind callbacks (decodelab_model_from_callbacks).
 *
 * Both have the shape of decodelab's LanguageModel. A model owns *sequences* (KV caches). A
 * sequence has a committed prefix; evaluate() scores a *token tree* hanging off it: node i is
 * (tokens[i], parents[i]) with parents[i] = -1 for a child of the prefix's last token, otherwise
 * an earlier node's index, and the logits of node i are the next-token logits after
 * prefix + path(root .. i). The evaluated tree stays pending until commit() keeps one root-to-node
 * path of it (node indices, root first) as committed tokens, or another evaluate() replaces it.
 * rollback() shortens the committed prefix; fork() makes a sequence that shares the committed
 * prefix. A chain is the tree with parents[i] = i - 1; a prefill is evaluate + commit of a chain.
 * Logits are raw (before any sampler chain). Invalid trees, paths and lengths are
 * INVALID_ARGUMENT, named in the message.
 *
 * A model must not be used by two threads at once (that includes a decodelab_generate running over
 * it). The draft of decodelab_model_load(spec, target) is independent of its target once loaded.
 * ------------------------------------------------------------------------------------------- */

typedef struct decodelab_model decodelab_model;

typedef struct decodelab_model_info {
  const char* name;       /* "SmolLM2-135M-Instruct.Q4_1.gguf"; valid while the model lives */
  int32_t vocab_size;     /* logits per node */
  int32_t context_length; /* maximum committed + pending tokens per sequence; 0 = unbounded */
  int32_t bos;            /* -1: none */
  int32_t eos;            /* -1: none */
  int32_t add_bos;        /* 1 when prompts should start with bos */
} decodelab_model_info;

/* Loads a model from a spec string, as the CLI and the daemon name models. `target` is the loaded
 * target when `spec` is a draft derived from it ("draft(temper=1.5,noise=0.2)"), else NULL.
 * Errors: NOT_FOUND (unknown kind, missing file), BAD_FORMAT (a spec or file that does not parse),
 * INVALID_ARGUMENT (bad parameters, a table file's wrong probabilities), UNSUPPORTED. */
DECODELAB_API decodelab_status decodelab_model_load(const char* spec, const decodelab_model* target,
                                                    decodelab_model** out);
/* Frees a model and its sequences; NULL is allowed and does nothing. A callback model's destroy
 * callback runs here (its free_sequence callbacks do not). */
DECODELAB_API void decodelab_model_free(decodelab_model* model);

/* Binds a chain to a model, as decodelab's decoders bind theirs to the target: Top-W with
 * gamma > 0 takes the model's own token embeddings (a GGUF model's, dequantized once and cached).
 * A chain that needs embeddings bound to a model without them (a callback model) is
 * INVALID_ARGUMENT; use decodelab_chain_bind_embeddings for those. The model may be freed after
 * the call. */
DECODELAB_API decodelab_status decodelab_chain_bind_model(decodelab_chain* chain, const decodelab_model* model);
DECODELAB_API decodelab_status decodelab_model_get_info(const decodelab_model* model, decodelab_model_info* out);
/* Tokenizes text with the model's tokenizer (UNSUPPORTED for a model without one, e.g. callbacks).
 * add_special != 0 adds bos when the model wants it. *n_tokens receives the count; tokens may be
 * NULL with capacity 0 to ask for the count only; fewer than *n_tokens is INVALID_ARGUMENT. */
DECODELAB_API decodelab_status decodelab_model_tokenize(const decodelab_model* model, const char* text,
                                                        int32_t add_special, int32_t* tokens, size_t capacity,
                                                        size_t* n_tokens);

DECODELAB_API decodelab_status decodelab_model_new_sequence(decodelab_model* model, int32_t* seq);
DECODELAB_API decodelab_status decodelab_model_fork(decodelab_model* model, int32_t seq, int32_t* child);
DECODELAB_API decodelab_status decodelab_model_free_sequence(decodelab_model* model, int32_t seq);
/* Committed tokens of seq. */
DECODELAB_API decodelab_status decodelab_model_length(const decodelab_model* model, int32_t seq, size_t* length);
/* Evaluates a tree of n_nodes >= 1 nodes off seq's committed prefix; logits receives
 * n_nodes x vocab_size floats, row i for node i. */
DECODELAB_API decodelab_status decodelab_model_evaluate(decodelab_model* model, int32_t seq, const int32_t* tokens,
                                                        const int32_t* parents, size_t n_nodes, float* logits);
/* Commits the root-to-node path of the pending tree (n_path >= 1 node indices, root first). */
DECODELAB_API decodelab_status decodelab_model_commit(decodelab_model* model, int32_t seq, const int32_t* path,
                                                      size_t n_path);
/* Shortens seq's committed prefix to new_length tokens (<= its length) and drops the pending tree. */
DECODELAB_API decodelab_status decodelab_model_rollback(decodelab_model* model, int32_t seq, size_t new_length);

/* A model whose forward pass is the caller's. decodelab keeps the sequences' bookkeeping and
 * validates every operation before a callback sees it, so a callback is only asked valid things:
 * trees whose parents precede their children and whose tokens are in [0, vocab_size), commit paths
 * of the tree evaluated last, rollbacks to a shorter length. The sequence ids callbacks receive are
 * the callback model's own (chosen by decodelab, fresh for every new_sequence and fork; not the
 * ids decodelab_model_new_sequence returns), so the caller keys its state by them.
 *
 * Each callback returns DECODELAB_OK, or any other status to fail: the operation (and a
 * decodelab_generate running over the model) then returns DECODELAB_ERR_CALLBACK, with a message
 * naming the model, the callback, its arguments and the status it returned. Callbacks must not
 * throw C++ exceptions or longjmp through decodelab; they run on the thread that called into
 * decodelab. */
typedef struct decodelab_model_callbacks {
  size_t struct_size;     /* sizeof(decodelab_model_callbacks): lets later versions add fields */
  void* user;             /* passed to every callback */
  const char* name;       /* the model's name in messages (copied; NULL: "callbacks") */
  int32_t vocab_size;     /* >= 1 */
  int32_t eos;            /* end-of-sequence token, -1 for none */
  int32_t context_length; /* maximum committed + pending tokens per sequence; 0 = unbounded */
  /* A new, empty sequence. */
  decodelab_status (*new_sequence)(void* user, int32_t seq);
  /* A new sequence `child` whose committed prefix is `parent`'s (the pending tree is not forked). */
  decodelab_status (*fork)(void* user, int32_t parent, int32_t child);
  decodelab_status (*free_sequence)(void* user, int32_t seq);
  /* Writes n_nodes x vocab_size logits (row i: after prefix + path(root .. i)); -inf excludes a
   * token, NaN or +inf is an error. The tree becomes seq's pending tree. */
  decodelab_status (*evaluate)(void* user, int32_t seq, const int32_t* tokens, const int32_t* parents, size_t n_nodes,
                               float* logits);
  /* Appends the tokens of the pending tree's nodes path[0..n_path) to seq's committed prefix. */
  decodelab_status (*commit)(void* user, int32_t seq, const int32_t* path, size_t n_path);
  /* Shortens seq's committed prefix to new_length tokens (and drops its pending tree). */
  decodelab_status (*rollback)(void* user, int32_t seq, size_t new_length);
  /* Optional (may be NULL): called once when the model is freed, or when creation fails. */
  void (*destroy)(void* user);
} decodelab_model_callbacks;

/* Every function pointer but destroy must be set; struct_size must be at least the size of the
 * 0.2 struct. On failure destroy(user) has been called. */
DECODELAB_API decodelab_status decodelab_model_from_callbacks(const decodelab_model_callbacks* callbacks,
                                                              decodelab_model** out);

/* ---------------------------------------------------------------------------------------------
 * Running a decoder over models (since 0.2)
 *
 * decodelab_generate runs any registered decoder, named by a spec string with its parameters
 * ("sample(temperature=0.7,top_k=40)", "spectr(k=4,L=3)", "sd(L=4)"), over a target model and,
 * for the speculative decoders, a draft (a model of the same vocabulary; loaded or callbacks, in
 * any mix). It is the run `decodelab generate` does: the same seed gives the same tokens.
 * ------------------------------------------------------------------------------------------- */

typedef struct decodelab_generate_options {
  size_t struct_size;         /* sizeof(decodelab_generate_options) */
  uint64_t seed;              /* Philox seed of every random draw */
  int32_t max_new_tokens;     /* >= 1 */
  int32_t stop_at_eos;        /* nonzero: the target's eos token ends the generation */
  const int32_t* stop_tokens; /* generation ends after emitting one of these; may be NULL */
  size_t n_stop_tokens;
  /* 0.3: models in further roles, for decoders that use roles besides target and draft (smc's
   * "reward_model", with reward_model_weight != 0): role_models[i] plays role_names[i]. n_roles 0
   * (and NULL arrays) for none. A 0.2 caller's smaller struct_size means none. */
  const char* const* role_names;
  decodelab_model* const* role_models;
  size_t n_roles;
} decodelab_generate_options;

typedef struct decodelab_generate_stats {
  size_t n_tokens;         /* generated tokens written to `tokens` */
  int64_t steps;           /* decoder iterations */
  int64_t target_calls;    /* target forward passes (prefill chunks included) */
  int64_t draft_calls;     /* draft forward passes */
  int64_t tokens_proposed; /* draft tokens offered to verification */
  int64_t tokens_accepted; /* draft tokens accepted */
  char stop_reason[32];    /* "max_tokens", "eos", "stop_token", "length", ... NUL-terminated */
} decodelab_generate_stats;

/* seed 0, max_new_tokens 64, stop_at_eos 1, no stop tokens, struct_size set. */
DECODELAB_API void decodelab_generate_options_init(decodelab_generate_options* options);

/* Generates after the prompt (n_prompt >= 1 tokens) with the decoder `decoder_spec` over target
 * (and draft, NULL for decoders that need none; models in further roles come in options). tokens receives the generated
 * tokens; capacity must be >= options->max_new_tokens. options NULL means decodelab_generate_options_init's. stats may
 * be NULL. The models' sequences are freed when the call returns, however it ends. */
DECODELAB_API decodelab_status decodelab_generate(const char* decoder_spec, decodelab_model* target,
                                                  decodelab_model* draft, const int32_t* prompt, size_t n_prompt,
                                                  const decodelab_generate_options* options, int32_t* tokens,
                                                  size_t capacity, decodelab_generate_stats* stats);

/* ---------------------------------------------------------------------------------------------
 * Catalogue: the registered samplers and decoders with their parameters
 *
 * Components are listed in name order; index i stays the same for as long as the library is
 * loaded. Decoders run over models with decodelab_generate.
 * ------------------------------------------------------------------------------------------- */

typedef enum decodelab_kind {
  DECODELAB_KIND_SAMPLER = 0,
  DECODELAB_KIND_DECODER = 1,
  DECODELAB_KIND_MAX_ENUM = 0x7FFFFFFF
} decodelab_kind;

typedef struct decodelab_component_info {
  const char* name;  /* "top_k": the name used in spec strings */
  const char* doc;   /* one line on what it does */
  const char* roles; /* decoders: the model roles they need, comma-separated ("target,draft"); "" for samplers */
  size_t n_params;   /* parameters, read with decodelab_component_param */
} decodelab_component_info;

typedef struct decodelab_param_info {
  const char* name;          /* "k" */
  const char* type;          /* "integer", "real", "boolean" or "string" */
  const char* default_value; /* the default as a spec string would write it: "40" */
  double min;                /* inclusive bounds of an integer or real; -inf / +inf when open */
  double max;
  const char* doc;         /* one line on what it means */
  const char* description; /* all of it in one line: "k: integer in [1, 1000000], default 40 -- ..." */
} decodelab_param_info;

DECODELAB_API decodelab_status decodelab_component_count(decodelab_kind kind, size_t* count);
/* Index in [0, count); NOT_FOUND otherwise. */
DECODELAB_API decodelab_status decodelab_component_get(decodelab_kind kind, size_t index,
                                                       decodelab_component_info* out);
/* The index of the component called `name`; NOT_FOUND (with the known names) otherwise. */
DECODELAB_API decodelab_status decodelab_component_find(decodelab_kind kind, const char* name, size_t* index);
/* Parameter `param` in [0, n_params) of component `index`. */
DECODELAB_API decodelab_status decodelab_component_param(decodelab_kind kind, size_t index, size_t param,
                                                         decodelab_param_info* out);

#ifdef __cplusplus
}
#endif

#endif /* DECODELAB_DECODELAB_H */
