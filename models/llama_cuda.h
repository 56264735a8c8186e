// The LLaMA forward on a CUDA device: a GPU member's model.
//
// The frozen base (any dtype with a CUDA decoder, core/cuda_matmul.h) is
// uploaded once, packed as it is on the host; every projection decodes a tile
// of rows at a time into cuBLAS (never a full f32 copy of a weight). RMSNorm,
// RoPE, causal grouped-query attention over packed sequences, SwiGLU and the
// output layer's log-probabilities run as the kernels of core/cuda_ops.h. The
// batched-variant forward of a zeroth-order step runs all 2q variants in one
// pass: where the adapters describe a variant as θ + σε·z (PerturbedLora), its
// factors are formed on the device from θ and the key by perturbed_copy_cuda,
// the same bits as the CPU's; other adapter sets are built on the host and
// copied over, one projection at a time.
//
// The host model stays the reference and serves what a member does not run on
// the device: incremental decoding (generation) and the base tensors that
// trainable sets start from. Trained norms are supported; full-weight,
// embedding and output training, backward and JVP are not on CUDA and say so.
//
// Calls are serialized (one device, one stream): members of one process may
// share the model. In a build without CUDA, construction throws "built without CUDA".
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/cuda_matmul.h"
#include "models/llama.h"

namespace zeroth {

struct LlamaCudaOptions {
  // f32 (cuBLAS without TF32: the CPU's arithmetic, up to summation order),
  // tf32 or bf16 (tensor cores). Zeroth-order differences L+ − L− are small:
  // bench/cuda reports how far each precision moves the projected gradients.
  GemmPrecision precision = GemmPrecision::F32;
  size_t tile_bytes = size_t(64) << 20;  // decoded weight rows per tile
};

class LlamaCuda : public CausalLM {
 public:
  // Uploads host's base to the calling thread's current device (0 unless the
  // NCCL transport chose another). `host` must outlive this model.
  explicit LlamaCuda(const LlamaModel& host, LlamaCudaOptions options = {});
  ~LlamaCuda() override;

  std::string describe() const;  // "cuda (sm90, f32 GEMMs): 1.2 GiB of weights on the device"

  std::string_view family() const override { return "llama"; }
  int64_t hidden_size() const override { return host_.hidden_size(); }
  int64_t vocab_size() const override { return host_.vocab_size(); }
  int64_t max_seq_len() const override { return host_.max_seq_len(); }
  int n_layers() const override { return host_.n_layers(); }
  ProjectionDims projection_dims() const override { return host_.projection_dims(); }
  const Tensor& projection_weight(int layer, Proj p) const override { return host_.projection_weight(layer, p); }
  const Tensor& norm_weight(int layer, NormSlot slot) const override { return host_.norm_weight(layer, slot); }
  const Tensor& embedding_weight() const override { return host_.embedding_weight(); }
  LoraFactors base_low_rank(int layer, Proj p) const override { return host_.base_low_rank(layer, p); }
  bool tied_output() const override { return host_.tied_output(); }

  std::vector<float> forward_hidden(const TokenBatch& batch, const AdapterSet* adapters = nullptr) const override;
  std::vector<float> token_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                    const std::vector<int32_t>& targets, const TokenBatch* batch = nullptr,
                                    const AdapterSet* adapters = nullptr) const override;
  std::vector<float> column_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                     const std::vector<int32_t>& columns, const TokenBatch* batch = nullptr,
                                     const AdapterSet* adapters = nullptr) const override;
  double backward(const TokenBatch& batch, const AdapterSet& adapters, const HiddenLoss& loss,
                  AdapterGradients& grads, const BackwardOptions& opt = {}) const override;
  double jvp(const TokenBatch& batch, const AdapterSet& adapters, const AdapterSet& directions, int count,
             const HiddenLossJvp& loss, std::vector<double>& dots) const override;
  // On the host model (generation is not a member's work).
  KVCache new_cache(int64_t capacity = 0) const override { return host_.new_cache(capacity); }
  std::vector<float> decode(KVCache& cache, const std::vector<int32_t>& tokens,
                            const AdapterSet* adapters = nullptr) const override {
    return host_.decode(cache, tokens, adapters);
  }

 protected:
  const Tensor& output_matrix() const override { return host_.output_weight(); }

 private:
  struct DeviceState;  // weights and scratch in device memory
  // Rows of `hidden` at `rows`, through the output layer a chunk at a time:
  // fn(first, count, logits, lp) for positions [first, first + count) of rows, with
  // their logits (count, vocab) and room for count log-probs, both on the device.
  template <typename Fn>
  void output_chunks(const std::vector<float>& hidden, const std::vector<int64_t>& rows, const AdapterSet* adapters,
                     const char* who, Fn&& fn) const;
  void norm_rows( const float* x, float* out, int64_t n, int layer, NormSlot slot, const TokenBatch& batch,
                 const AdapterSet* adapters) const;
  void project( const float* x, int64_t n, int layer, Proj p, float* y, const TokenBatch& batch,
               const AdapterSet* adapters, int64_t in, int64_t out) const;

  const LlamaModel& host_;
  LlamaCudaOptions options_;
  std::unique_ptr<DeviceState> dev_;
  size_t weight_bytes_ = 0;
  int device_ = 0;  // the device it was uploaded to: every call runs there, whatever thread makes it
  mutable std::mutex mu_;
};

}  // namespace zeroth
