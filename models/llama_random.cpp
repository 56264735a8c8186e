// LLaMA-shaped models with random weights: for tests of the forward pass and for
// speed figures at shapes no real checkpoint here has.
#include <cmath>
#include <cstdint>
#include <random>

#include "core/parallel.h"
#include "core/quant/quant.h"
#include "models/llama.h"

namespace zeroth {
namespace {

// Every tensor of `c`'s shape, made by matrix(rows, cols, is_embedding) and
// norm(n) in one fixed order (the draw order of make_random_llama's stream).
template <typename Matrix, typename Norm>
LlamaWeights assemble(const LlamaConfig& c, Matrix&& matrix, Norm&& norm) {
  c.validate();
  LlamaWeights w;
  w.config = c;
  w.tok_embeddings = matrix(c.vocab_size, c.dim, true);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LlamaLayer L;
    L.attn_norm = norm(c.dim);
    L.wq = matrix(c.q_dim(), c.dim, false);
    L.wk = matrix(c.kv_dim(), c.dim, false);
    L.wv = matrix(c.kv_dim(), c.dim, false);
    L.wo = matrix(c.dim, c.q_dim(), false);
    L.ffn_norm = norm(c.dim);
    L.w_gate = matrix(c.hidden_dim, c.dim, false);
    L.w_up = matrix(c.hidden_dim, c.dim, false);
    L.w_down = matrix(c.dim, c.hidden_dim, false);
    w.layers.push_back(std::move(L));
  }
  w.final_norm = norm(c.dim);
  w.output = c.tie_embeddings ? w.tok_embeddings : matrix(c.vocab_size, c.dim, true);
  return w;
}

}  // namespace

LlamaWeights make_random_llama(const LlamaConfig& config, uint64_t seed, DType weight_dtype) {
  std::mt19937_64 rng(seed);
  // Weights ~ U(-a, a) with a = 1/sqrt(fan_in): activations stay O(1) through depth.
  auto matrix = [&](int64_t rows, int64_t cols, bool) {
    Tensor t = Tensor::empty(DType::F32, {rows, cols});
    std::uniform_real_distribution<float> u(-1.0f / std::sqrt(float(cols)), 1.0f / std::sqrt(float(cols)));
    float* p = t.data<float>();
    for (int64_t i = 0; i < rows * cols; ++i) p[i] = u(rng);
    return weight_dtype == DType::F32 ? t : quantize(t, weight_dtype);
  };
  auto norm = [&](int64_t n) {
    Tensor t = Tensor::empty(DType::F32, {n});
    std::uniform_real_distribution<float> u(0.8f, 1.2f);
    for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = u(rng);
    return t;
  };
  return assemble(config, matrix, norm);
}

LlamaWeights make_random_llama_parallel(const LlamaConfig& config, uint64_t seed, DType weight_dtype,
                                        DType embedding_dtype) {
  uint64_t tensor_id = 0;
  // U(lo, hi) from splitmix64 of (seed, tensor, index): any split of the
  // indices among threads gives the same values.
  auto fill = [&](Tensor& t, float lo, float hi) {
    const uint64_t id = ++tensor_id;
    float* p = t.data<float>();
    parallel_for(t.numel(), int64_t(1) << 16, 0, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (id << 40) ^ uint64_t(i);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        p[i] = lo + (hi - lo) * float(double(z >> 40) / double(uint64_t(1) << 24));
      }
    });
  };
  auto matrix = [&](int64_t rows, int64_t cols, bool embedding) {
    Tensor t = Tensor::empty(DType::F32, {rows, cols});
    const float a = 1.0f / std::sqrt(float(cols));
    fill(t, -a, a);
    const DType to = embedding ? embedding_dtype : weight_dtype;
    return to == DType::F32 ? t : quantize(t, to);
  };
  auto norm = [&](int64_t n) {
    Tensor t = Tensor::empty(DType::F32, {n});
    fill(t, 0.8f, 1.2f);
    return t;
  };
  return assemble(config, matrix, norm);
}

}  // namespace zeroth
