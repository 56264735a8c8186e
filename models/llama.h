// The LLaMA family (Llama 2/3, TinyLlama, SmolLM/SmolLM2, llama2.c models):
// RMSNorm, RoPE, grouped-query attention, SwiGLU, tied or untied embeddings.
//
// The base weights are frozen and may be in any dtype (f32/f16/bf16 or a
// quantized block format); norms are f32. Trainable low-rank adapters enter
// through an AdapterSet, so one batched forward can run many adapter variants
// (the 2q perturbations of a zeroth-order step) over the same frozen base.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "models/batch.h"
#include "models/causal_lm.h"
#include "models/lora.h"

namespace zeroth {

struct LlamaConfig {
  int64_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0;
  int64_t head_dim = 0;        // 0 = dim / n_heads
  int64_t max_seq_len = 2048;
  float norm_eps = 1e-5f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool rope_interleaved = true;  // Meta/GGUF layout; HF checkpoints use rotate-half
  bool tie_embeddings = true;

  int64_t hd() const { return head_dim ? head_dim : dim / n_heads; }
  int64_t q_dim() const { return n_heads * hd(); }
  int64_t kv_dim() const { return n_kv_heads * hd(); }
  void validate() const;  // throws zeroth::Error naming the bad field
  std::string describe() const;
};

struct LlamaLayer {
  Tensor attn_norm;            // (dim) f32
  Tensor wq, wk, wv, wo;       // (q_dim, dim), (kv_dim, dim), (kv_dim, dim), (dim, q_dim)
  Tensor ffn_norm;             // (dim) f32
  Tensor w_gate, w_up, w_down; // (hidden, dim), (hidden, dim), (dim, hidden)
  // A frozen low-rank part of the base (LQ-LoRA: W ≈ Q + L1·L2), per projection,
  // or undefined: low_rank_a[p] = L2 (r, in) f32, low_rank_b[p] = L1 (out, r) f32.
  // The forward adds x·L2ᵀ·L1ᵀ unless trainable adapters take the projection
  // over (they start from these factors: LoraTrainable::initialize).
  std::array<Tensor, kProjCount> low_rank_a, low_rank_b;
  const Tensor& proj(Proj p) const;
  Tensor& proj(Proj p) { return const_cast<Tensor&>(std::as_const(*this).proj(p)); }
};

struct LlamaWeights {
  LlamaConfig config;
  Tensor tok_embeddings;       // (vocab, dim), any dtype
  std::vector<LlamaLayer> layers;
  Tensor final_norm;           // (dim) f32
  Tensor output;               // (vocab, dim); the embedding itself when tied
  std::vector<std::string> notes;  // what loading changed or could not do (e.g. tensors left unquantized)
  // Checks every tensor's shape and dtype; errors name the tensor and `source`.
  void validate(const std::string& source) const;
  int64_t parameter_count() const;
  size_t weight_bytes() const;
};

// Random weights (U(±1/sqrt(fan_in)), norms near 1) in `weight_dtype` for the
// projections and embeddings: for tests and speed figures at real shapes.
LlamaWeights make_random_llama(const LlamaConfig& config, uint64_t seed, DType weight_dtype = DType::F32);
// The same shapes and ranges, fast enough for 7B (make_random_llama draws one
// element at a time from one stream): each element a hash of (seed, tensor,
// index), filled and quantized in parallel, the same whatever the thread count;
// projections in `weight_dtype`, the embedding and an untied output layer in
// `embedding_dtype` (bf16 as QLoRA keeps them, say). Other values than
// make_random_llama's for the same seed.
LlamaWeights make_random_llama_parallel(const LlamaConfig& config, uint64_t seed, DType weight_dtype,
                                        DType embedding_dtype);

class LlamaModel : public CausalLM {
 public:
  explicit LlamaModel(LlamaWeights weights, int threads = 0);

  const LlamaConfig& config() const { return w_.config; }
  const LlamaWeights& weights() const { return w_; }

  std::string_view family() const override { return "llama"; }
  int64_t hidden_size() const override { return w_.config.dim; }
  int64_t vocab_size() const override { return w_.config.vocab_size; }
  int64_t max_seq_len() const override { return w_.config.max_seq_len; }
  int n_layers() const override { return int(w_.config.n_layers); }
  ProjectionDims projection_dims() const override;
  const Tensor& projection_weight(int layer, Proj p) const override { return w_.layers[size_t(layer)].proj(p); }
  const Tensor& norm_weight(int layer, NormSlot slot) const override;
  const Tensor& embedding_weight() const override { return w_.tok_embeddings; }
  LoraFactors base_low_rank(int layer, Proj p) const override;
  bool tied_output() const override { return w_.config.tie_embeddings; }
  std::vector<float> forward_hidden(const TokenBatch& batch, const AdapterSet* adapters = nullptr) const override;
  KVCache new_cache(int64_t capacity = 0) const override;
  // models/llama_backward.cpp: LoRA (and norm) gradients through the frozen base.
  double backward(const TokenBatch& batch, const AdapterSet& adapters, const HiddenLoss& loss,
                  AdapterGradients& grads, const BackwardOptions& opt = {}) const override;
  // models/llama_jvp.cpp: forward-mode directional derivatives (tangents of
  // the LoRA factors and norm gains) through the frozen base.
  double jvp(const TokenBatch& batch, const AdapterSet& adapters, const AdapterSet& directions, int count,
             const HiddenLossJvp& loss, std::vector<double>& dots) const override;
  std::vector<float> decode(KVCache& cache, const std::vector<int32_t>& tokens,
                            const AdapterSet* adapters = nullptr) const override;

 protected:
  const Tensor& output_matrix() const override { return w_.output; }

 private:
  // x (tokens, d): each row's token embedding, from its variant's embedding
  // when the adapters train it (variant 0 without a batch).
  void embed(const std::vector<int32_t>& tokens, float* x, const TokenBatch* batch, const AdapterSet* adapters) const;
  // out = rmsnorm(x) with the gains of each row's variant (the base's unless the adapters train norms).
  void norm_rows(const float* x, float* out, int64_t n, int layer, NormSlot slot, const TokenBatch* batch,
                 const AdapterSet* adapters) const;
  void project(const float* x, int64_t n, int layer, Proj p, float* y, const TokenBatch* batch,
               const AdapterSet* adapters, int64_t in, int64_t out) const;
  // The MLP's activations (gate, up, down), allocated once per forward and
  // reused by every layer: fresh 6 MiB buffers per layer cost SmolLM2's
  // 16 × 64-token forward about 3 % in page faults and zeroing.
  struct MlpBuffers { std::vector<float> g, u, d; };
  void mlp(float* x, int64_t n, int layer, const TokenBatch* batch, const AdapterSet* adapters,
           std::vector<float>& xn, MlpBuffers& buf) const;

  // The backward pass (llama_backward.cpp). A layer's saved activations:
  struct LayerTape;
  void layer_forward(int layer, float* x, const TokenBatch& batch, const AdapterSet& adapters, LayerTape& tape) const;
  void layer_backward(int layer, const LayerTape& tape, float* dx, const TokenBatch& batch,
                      const AdapterSet& adapters, AdapterGradients& grads, const BackwardOptions& opt) const;
  // dx (n, in) (+)= ∂L/∂x of y = project(x) given dy (n, out); adds the adapter's dA, dB.
  void project_backward(const float* x, const float* dy, float* dx, bool accumulate, int64_t n, int layer, Proj p,
                        const AdapterSet& adapters, AdapterGradients& grads, int64_t in, int64_t out,
                        const BackwardOptions& opt) const;
  const float* norm_gains(int layer, NormSlot slot, const AdapterSet& adapters, std::vector<float>& scratch) const;

  // The forward-mode pass (llama_jvp.cpp). Buffers hold 1 + count blocks of
  // (n, width): the primal, then each tangent. A layer's working buffers:
  struct JvpLayer;
  void layer_jvp(int layer, float* x, int64_t count, const TokenBatch& batch, const std::vector<int32_t>& positions,
                 const AdapterSet& adapters, const AdapterSet& directions, JvpLayer& buf) const;
  // out = rmsnorm(x) and its tangents (with the gains' when the adapters train norms).
  void norm_jvp(const float* x, float* out, int64_t n, int64_t count, int layer, NormSlot slot,
                const TokenBatch& batch, const AdapterSet& adapters, const AdapterSet& directions) const;
  // y = project(x) and its tangents: the base product over all (1 + count)·n rows.
  void project_jvp(const float* x, float* y, int64_t n, int64_t count, int layer, Proj p, const TokenBatch& batch,
                   const AdapterSet& adapters, const AdapterSet& directions, int64_t in, int64_t out) const;

  LlamaWeights w_;
  RopeTable rope_;
};

}  // namespace zeroth
