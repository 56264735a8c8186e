// Row-wise neural-network ops on f32 activations, shared by every model family.
// All buffers are row-major; n is the number of token rows. These are the CPU
// reference implementations (a CUDA file of the same name pairs with each).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace zeroth {

// out[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * w          x, out: (n, d); w: (d)
void rmsnorm(const float* x, const float* w, float* out, int64_t n, int64_t d, float eps, int threads = 0);
// LayerNorm with optional bias (b may be null).                 x, out: (n, d)
void layernorm(const float* x, const float* w, const float* b, float* out, int64_t n, int64_t d, float eps,
               int threads = 0);

// Rotary position embedding tables: cos/sin of (position × frequency), (max_pos, head_dim/2).
struct RopeTable {
  int64_t head_dim = 0, max_pos = 0;
  std::vector<float> cos, sin;
};
struct RopeScaling {  // Llama 3.x frequency scaling ("rope_type": "llama3"); factor 0 = none
  float factor = 0, low_freq_factor = 1, high_freq_factor = 4;
  int64_t original_max_position = 8192;
};
RopeTable make_rope_table(int64_t head_dim, int64_t max_pos, double theta, const RopeScaling& scaling = {});
// Rotates x (n, heads*head_dim) in place; positions (n). `interleaved`: pairs
// (x[2j], x[2j+1]) as in Meta's original layout and GGUF; otherwise HF's
// rotate-half pairs (x[j], x[j + head_dim/2]).
void rope(float* x, const int32_t* positions, int64_t n, int64_t heads, const RopeTable& table, bool interleaved,
          int threads = 0);

// Causal grouped-query attention over packed sequences. Sequence s owns rows
// [starts[s], starts[s] + lengths[s]) and attends only within itself.
//   q, out: (n, heads*hd)   k, v: (n, kv_heads*hd)
struct SeqSpan {
  int64_t start, length;
};
void causal_attention(const float* q, const float* k, const float* v, float* out, std::span<const SeqSpan> seqs,
                      int64_t heads, int64_t kv_heads, int64_t hd, int threads = 0);

// The same for m new query rows (m, heads*hd) at positions p0..p0+m-1 of one
// sequence whose keys/values are cache rows 0..p0+m-1 (kv_heads*hd each).
void causal_attention_cached(const float* q, const float* k_cache, const float* v_cache, float* out, int64_t p0,
                             int64_t m, int64_t heads, int64_t kv_heads, int64_t hd, int threads = 0);

// g = silu(g) * u, elementwise over n values (SwiGLU)
void silu_mul(float* g, const float* u, int64_t n, int threads = 0);
// x = gelu_tanh(x) (GPT-2's approximation), x = relu(x)
void gelu_tanh(float* x, int64_t n, int threads = 0);
void relu(float* x, int64_t n, int threads = 0);
// y += x
void add_inplace(float* y, const float* x, int64_t n, int threads = 0);
// Row-wise log-sum-exp of (n, d) logits.
void logsumexp_rows(const float* x, int64_t n, int64_t d, float* out, int threads = 0);
// One block of a running log-sum-exp over a row's columns, in column order:
// max becomes max(max, x[0, n)), sum (Σ exp(x − max) in double) is rescaled to
// it, then gains this block's terms. Start from max = −inf, sum = 0; the
// result is max + float(log(sum)). A whole row in one block is logsumexp_rows's
// arithmetic exactly (logsumexp_rows is this).
void logsumexp_add(const float* x, int64_t n, float& max, double& sum);

}  // namespace zeroth
