// LLaMA-shaped models with random weights: for tests of the forward pass and for
// speed figures at shapes no real checkpoint here has.
#include <random>

#include "core/quant/quant.h"
#include "models/llama.h"

namespace zeroth {

LlamaWeights make_random_llama(const LlamaConfig& config, uint64_t seed, DType weight_dtype) {
  config.validate();
  std::mt19937_64 rng(seed);
  // Weights ~ U(-a, a) with a = 1/sqrt(fan_in): activations stay O(1) through depth.
  auto matrix = [&](int64_t rows, int64_t cols) {
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
  const auto& c = config;
  LlamaWeights w;
  w.config = c;
  w.tok_embeddings = matrix(c.vocab_size, c.dim);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LlamaLayer L;
    L.attn_norm = norm(c.dim);
    L.wq = matrix(c.q_dim(), c.dim);
    L.wk = matrix(c.kv_dim(), c.dim);
    L.wv = matrix(c.kv_dim(), c.dim);
    L.wo = matrix(c.dim, c.q_dim());
    L.ffn_norm = norm(c.dim);
    L.w_gate = matrix(c.hidden_dim, c.dim);
    L.w_up = matrix(c.hidden_dim, c.dim);
    L.w_down = matrix(c.dim, c.hidden_dim);
    w.layers.push_back(std::move(L));
  }
  w.final_norm = norm(c.dim);
  w.output = c.tie_embeddings ? w.tok_embeddings : matrix(c.vocab_size, c.dim);
  return w;
}

}  // namespace zeroth
