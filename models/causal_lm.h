// What the trainer, evaluation and generation need from a decoder-only language
// model, whatever its family (LLaMA here; OPT/GPT-2 as a sibling class).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "models/batch.h"
#include "models/lora.h"

namespace zeroth {

// Gradients of what a backward pass trains, in LoraAdapters' layout: the LoRA
// factors of each (layer, projection) that has an adapter, and the RMSNorm
// gains when the adapters train them. Backward passes add (+=) into them and
// size them on first use.
struct AdapterGradients {
  std::vector<std::vector<float>> A, B;   // index layer·kProjCount + proj: (r, in), (out, r); empty = no adapter
  std::vector<std::vector<float>> norms;  // index 2·layer (attention), 2·layer + 1 (ffn), 2·n_layers (final); (hidden)
  std::vector<float>& dA(int layer, Proj p) { return A[size_t(layer) * kProjCount + size_t(p)]; }
  std::vector<float>& dB(int layer, Proj p) { return B[size_t(layer) * kProjCount + size_t(p)]; }
  const std::vector<float>& dA(int layer, Proj p) const { return A[size_t(layer) * kProjCount + size_t(p)]; }
  const std::vector<float>& dB(int layer, Proj p) const { return B[size_t(layer) * kProjCount + size_t(p)]; }
  std::vector<float>& dnorm(int layer, NormSlot s) { return norms[norm_index(layer, s)]; }
  const std::vector<float>& dnorm(int layer, NormSlot s) const { return norms[norm_index(layer, s)]; }
  void clear();  // every gradient back to zero (shapes kept)

 private:
  size_t norm_index(int layer, NormSlot s) const {
    return s == NormSlot::Final ? norms.size() - 1 : size_t(layer) * 2 + (s == NormSlot::Ffn ? 1 : 0);
  }
};

struct BackwardOptions {
  // false: keep every layer's activations from the forward (fastest, most
  // memory); true: keep only each layer's input and recompute the layer during
  // backward (about one more forward of compute, activation memory of one layer).
  bool checkpoint = false;
  // Calibration only (LQ-LoRA's Fisher, models/fisher.h): called for every
  // base projection y = x·Wᵀ during backward with its input x (n, in) and the
  // gradient dy (n, out) of its output, so that ∂L/∂W = dyᵀ·x can be formed
  // although the base is frozen. Called in layer-reverse order from one thread.
  std::function<void(int layer, Proj p, const float* x, const float* dy, int64_t n, int64_t in, int64_t out)>
      projection_hook;
};

// The loss as a function of the final-normed hidden states (rows, hidden):
// returns L and writes ∂L/∂hidden into d_hidden (same size, zero on entry).
using HiddenLoss = std::function<double(const std::vector<float>& hidden, std::vector<float>& d_hidden)>;

// Forward mode: the loss as a function of the final-normed hidden states
// (rows, hidden) and `count` tangents of them (count, rows, hidden), direction
// after direction: returns L and writes dL/dε along each direction into
// loss_dots (count).
using HiddenLossJvp = std::function<double(const std::vector<float>& hidden, const std::vector<float>& hidden_dots,
                                           int64_t count, std::vector<double>& loss_dots)>;

// KV cache of one sequence for incremental decoding.
struct KVCache {
  int64_t length = 0;                    // positions filled
  int64_t capacity = 0;                  // positions it can hold
  std::vector<std::vector<float>> k, v;  // per layer: (capacity, kv width)
};

class CausalLM {
 public:
  using ProjectionDims = std::array<std::array<int64_t, 2>, kProjCount>;  // {in, out}; {0, 0} = absent
  virtual ~CausalLM() = default;

  virtual std::string_view family() const = 0;
  virtual int64_t hidden_size() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_seq_len() const = 0;
  virtual int n_layers() const = 0;
  // Shapes of the projections LoRA adapters can attach to (the same in every layer).
  virtual ProjectionDims projection_dims() const = 0;
  // The frozen base's tensors that full-weight or norm training starts from.
  virtual const Tensor& projection_weight(int layer, Proj p) const = 0;  // (out, in), any dtype
  virtual const Tensor& norm_weight(int layer, NormSlot slot) const = 0;  // (hidden) f32
  virtual const Tensor& embedding_weight() const = 0;                    // (vocab, hidden), any dtype
  // The frozen low-rank part the base adds to projection (layer, p) (LQ-LoRA:
  // W ≈ Q + B·A with scale 1), or factors with r = 0 when it has none.
  virtual LoraFactors base_low_rank(int /*layer*/, Proj /*p*/) const { return {}; }
  const Tensor& output_weight() const { return output_matrix(); }        // (vocab, hidden), any dtype
  virtual bool tied_output() const = 0;  // the output layer is the token embedding itself
  int threads() const { return threads_; }

  // Final-normed hidden states (batch.rows(), hidden_size) for every token row.
  // Rows of sequence s use adapter variant batch.variant[s] when adapters are given.
  virtual std::vector<float> forward_hidden(const TokenBatch& batch, const AdapterSet* adapters = nullptr) const = 0;

  // Logits (rows.size(), vocab) for chosen rows of hidden states. With
  // `adapters` that override the output layer, row r uses the output matrix of
  // its variant: that of the sequence of `batch` holding r (the batch that made
  // `hidden`), or variant 0 without a batch; one variant's matrix at a time.
  std::vector<float> logits(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                            const TokenBatch* batch = nullptr, const AdapterSet* adapters = nullptr) const;
  // log p(targets[i] | row rows[i]); logits exist only a chunk of rows at a time.
  // (Virtual: a device model forms them where its output matrix lives.)
  virtual std::vector<float> token_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                            const std::vector<int32_t>& targets, const TokenBatch* batch = nullptr,
                                            const AdapterSet* adapters = nullptr) const;
  // Log-softmax over the vocabulary, reported only at `columns` (e.g. label words): (rows, columns).
  virtual std::vector<float> column_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                             const std::vector<int32_t>& columns, const TokenBatch* batch = nullptr,
                                             const AdapterSet* adapters = nullptr) const;

  // Backpropagation through the frozen base into the adapters (variant 0 of
  // `adapters`; every sequence of `batch` must use variant 0): one forward that
  // keeps what backward needs (BackwardOptions), L = loss(hidden), then the
  // gradients of L with respect to the LoRA factors (and the norm gains when
  // adapters.overrides_norms()) are added into `grads`. Returns L. Families
  // without a backward, and full-weight/embedding/output training, throw.
  virtual double backward(const TokenBatch& batch, const AdapterSet& adapters, const HiddenLoss& loss,
                          AdapterGradients& grads, const BackwardOptions& opt = {}) const;
  // The output layer's part of a loss: for terms i, lp_i = log p(targets[i] | row rows[i])
  // (returned), and the gradient of Σ_i coefs[i]·lp_i with respect to `hidden` is
  // added into d_hidden ((rows, hidden), as hidden). Rows may repeat; logits
  // exist only a chunk of rows at a time, and W_outᵀ is applied from its packed
  // blocks (matmul_dx). The base's output layer only.
  std::vector<float> logprob_backward(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                      const std::vector<int32_t>& targets, const std::vector<double>& coefs,
                                      std::vector<float>& d_hidden) const;

  // Forward-mode directional derivatives (models/llama_jvp.cpp for LLaMA): one
  // forward over `batch` (variant 0 of `adapters`) that carries `count`
  // tangents beside every activation, tangent k being the derivative along
  // direction k of the trainable parameters: variant k of `directions` holds
  // that direction's part of every LoRA factor (LoraFactors A, B; r and scale
  // ignored) and, when adapters.overrides_norms(), of every norm gain. The base
  // is frozen, so its weights have no tangent. Only the current layer's
  // activations (times 1 + count) are alive at a time. Returns L = loss(hidden)
  // and writes dL/dε along each direction into `dots` (count). Families without
  // it, and full-weight/embedding/output training, throw.
  virtual double jvp(const TokenBatch& batch, const AdapterSet& adapters, const AdapterSet& directions, int count,
                     const HiddenLossJvp& loss, std::vector<double>& dots) const;
  // The output layer's part of a forward-mode loss: lp_i = log p(targets[i] | row rows[i])
  // (returned) and its tangents lp_dots[c·terms + i] given the hidden states'
  // tangents hidden_dots (count, rows, hidden). The primal and tangent rows of
  // a chunk run through the (frozen, base) output matrix as one product;
  // Σ_v softmax_v·logit_dot_v is formed in double.
  std::vector<float> logprob_jvp(const std::vector<float>& hidden, const std::vector<float>& hidden_dots,
                                 int64_t count, const std::vector<int64_t>& rows, const std::vector<int32_t>& targets,
                                 std::vector<double>& lp_dots) const;

  // Incremental decoding: a cache for up to `capacity` positions (0 = the
  // context length); decode feeds `tokens` at positions cache.length.. and
  // returns the logits (vocab) of the last one.
  virtual KVCache new_cache(int64_t capacity = 0) const = 0;
  virtual std::vector<float> decode(KVCache& cache, const std::vector<int32_t>& tokens,
                                    const AdapterSet* adapters = nullptr) const = 0;

 protected:
  explicit CausalLM(int threads) : threads_(threads) {}
  virtual const Tensor& output_matrix() const = 0;  // (vocab, hidden), any dtype

 private:
  // Calls fn(idx, v0, v1, lg) for blocks of at most `max_rows` of the
  // positions i of `rows` (idx: those positions) by blocks [v0, v1) of at most
  // `cols` vocabulary columns, in increasing v0 (lg: their logits
  // (idx.size(), v1 - v0)). The rows of a block share one output matrix: the
  // base's, or one variant's (variants in increasing order, each matrix built once).
  using LogitBlockFn =
      std::function<void(const std::vector<size_t>& idx, int64_t v0, int64_t v1, const std::vector<float>& lg)>;
  void logit_blocks(const std::vector<float>& hidden, const std::vector<int64_t>& rows, const TokenBatch* batch,
                    const AdapterSet* adapters, int64_t max_rows, int64_t cols, const LogitBlockFn& fn) const;
  // token_logprobs (per_row: columns[i] is row i's target; out has one value
  // per row) or column_logprobs (every column for every row).
  std::vector<float> logprob_columns(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                     const std::vector<int32_t>& columns, bool per_row, const TokenBatch* batch,
                                     const AdapterSet* adapters) const;
  int threads_;
};

}  // namespace zeroth
