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
  std::vector<float> token_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                    const std::vector<int32_t>& targets, const TokenBatch* batch = nullptr,
                                    const AdapterSet* adapters = nullptr) const;
  // Log-softmax over the vocabulary, reported only at `columns` (e.g. label words): (rows, columns).
  std::vector<float> column_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                     const std::vector<int32_t>& columns, const TokenBatch* batch = nullptr,
                                     const AdapterSet* adapters = nullptr) const;

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
  // Calls fn(idx, lg) for chunks of at most `chunk` of the positions i of
  // `rows` (idx: those positions; lg: their logits (idx.size(), vocab)). The
  // rows of a chunk share one output matrix: the base's, or one variant's
  // (variants in increasing order, each matrix built once).
  void logit_chunks(const std::vector<float>& hidden, const std::vector<int64_t>& rows, const TokenBatch* batch,
                    const AdapterSet* adapters, size_t chunk,
                    const std::function<void(const std::vector<size_t>& idx, const std::vector<float>& lg)>& fn) const;
  int threads_;
};

}  // namespace zeroth
