// CPU reference of the row-wise ops (core/ops.h). Reductions accumulate in a
// fixed order per row, so results do not depend on the thread count.
#include "core/ops.h"
#include "core/ops_backward.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/cpu/attention_row.h"
#include "core/error.h"
#include "core/parallel.h"

namespace zeroth {

namespace {
// Rows per parallel chunk so that a chunk is at least ~16K elements of work.
int64_t row_grain(int64_t d) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)); }
constexpr int64_t kElemGrain = 1 << 15;
}  // namespace

void rmsnorm(const float* x, const float* w, float* out, int64_t n, int64_t d, float eps, int threads) {
  parallel_for(n, row_grain(d), threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      float* o = out + r * d;
      float ss = 0.0f;
      for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
      const float inv = 1.0f / std::sqrt(ss / float(d) + eps);
      for (int64_t i = 0; i < d; ++i) o[i] = w[i] * (inv * xr[i]);
    }
  });
}

void layernorm(const float* x, const float* w, const float* b, float* out, int64_t n, int64_t d, float eps,
               int threads) {
  parallel_for(n, row_grain(d), threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      float* o = out + r * d;
      float mean = 0.0f;
      for (int64_t i = 0; i < d; ++i) mean += xr[i];
      mean /= float(d);
      float var = 0.0f;
      for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const float inv = 1.0f / std::sqrt(var / float(d) + eps);
      for (int64_t i = 0; i < d; ++i) o[i] = (xr[i] - mean) * inv * w[i] + (b ? b[i] : 0.0f);
    }
  });
}

RopeTable make_rope_table(int64_t head_dim, int64_t max_pos, double theta, const RopeScaling& scaling) {
  ZEROTH_CHECK(head_dim > 0 && head_dim % 2 == 0, "RoPE needs an even head dimension, got {}", head_dim);
  ZEROTH_CHECK(max_pos > 0 && theta > 0, "RoPE needs max_pos > 0 and theta > 0");
  const int64_t half = head_dim / 2;
  std::vector<double> freq(static_cast<size_t>(half));
  for (int64_t j = 0; j < half; ++j) {
    double f = 1.0 / std::pow(theta, double(2 * j) / double(head_dim));
    if (scaling.factor > 0) {
      // Llama 3: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
      const double low_wl = double(scaling.original_max_position) / scaling.low_freq_factor;
      const double high_wl = double(scaling.original_max_position) / scaling.high_freq_factor;
      const double wl = 2.0 * M_PI / f;
      if (wl > low_wl) {
        f /= scaling.factor;
      } else if (wl >= high_wl) {
        const double smooth = (double(scaling.original_max_position) / wl - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1.0 - smooth) * f / scaling.factor + smooth * f;
      }
    }
    freq[size_t(j)] = f;
  }
  RopeTable t;
  t.head_dim = head_dim;
  t.max_pos = max_pos;
  t.cos.resize(size_t(max_pos * half));
  t.sin.resize(size_t(max_pos * half));
  for (int64_t p = 0; p < max_pos; ++p)
    for (int64_t j = 0; j < half; ++j) {
      // The angle in float, as llama2.c and HF compute it, keeps goldens within 1e-5.
      const float angle = float(p) * float(freq[size_t(j)]);
      t.cos[size_t(p * half + j)] = std::cos(angle);
      t.sin[size_t(p * half + j)] = std::sin(angle);
    }
  return t;
}

namespace {
// Rotates each (a, b) pair of every head by the row's angle θ (RoPE), or by −θ
// (its transpose: the backward of a rotation). sin·(−1) is exact, so the
// inverse is the same arithmetic as the transpose written out.
void rotate_pairs(float* x, const int32_t* positions, int64_t n, int64_t heads, const RopeTable& table,
                  bool interleaved, bool inverse, int threads) {
  const int64_t hd = table.head_dim, half = hd / 2;
  for (int64_t r = 0; r < n; ++r)  // checked here: nothing may throw inside a parallel region
    ZEROTH_CHECK(positions[r] >= 0 && positions[r] < table.max_pos,
                 "position {} outside the RoPE table of {} positions", positions[r], table.max_pos);
  const float sign = inverse ? -1.0f : 1.0f;
  parallel_for(n, row_grain(heads * hd), threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t p = positions[r];
      const float* c = table.cos.data() + p * half;
      const float* s = table.sin.data() + p * half;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + r * heads * hd + h * hd;
        for (int64_t j = 0; j < half; ++j) {
          float* a = interleaved ? v + 2 * j : v + j;
          float* b = interleaved ? v + 2 * j + 1 : v + j + half;
          const float x0 = *a, x1 = *b, sj = sign * s[j];
          *a = x0 * c[j] - x1 * sj;
          *b = x0 * sj + x1 * c[j];
        }
      }
    }
  });
}
}  // namespace

void rope(float* x, const int32_t* positions, int64_t n, int64_t heads, const RopeTable& table, bool interleaved,
          int threads) {
  rotate_pairs(x, positions, n, heads, table, interleaved, false, threads);
}

// Declared in core/ops_backward.h: dx ← Rᵀ dx = R(−θ) dx.
void rope_backward(float* dx, const int32_t* positions, int64_t n, int64_t heads, const RopeTable& table,
                   bool interleaved, int threads) {
  rotate_pairs(dx, positions, n, heads, table, interleaved, true, threads);
}

namespace {
// One head of causal attention for m query rows at positions p0..p0+m-1 of one
// sequence whose keys/values are rows 0..p0+m-1. q, out: rows of stride qdim;
// k, v: rows of stride kvdim. `att` is scratch of p0+m floats.
void attend_head(const float* q, const float* k, const float* v, float* out, int64_t p0, int64_t m, int64_t h,
                 int64_t kvh, int64_t hd, int64_t qdim, int64_t kvdim, float scale, std::vector<float>& att) {
  att.resize(size_t(p0 + m));
  for (int64_t i = 0; i < m; ++i) {
    const int64_t last = p0 + i;  // attends keys 0..last
    attention_weights(q + i * qdim + h * hd, k + kvh * hd, kvdim, hd, last, scale, att.data());
    float* o = out + i * qdim + h * hd;
    std::fill(o, o + hd, 0.0f);
    for (int64_t j = 0; j <= last; ++j) {
      const float* vj = v + j * kvdim + kvh * hd;
      const float a = att[size_t(j)];
      for (int64_t e = 0; e < hd; ++e) o[e] += a * vj[e];
    }
  }
}
}  // namespace

void causal_attention(const float* q, const float* k, const float* v, float* out, std::span<const SeqSpan> seqs,
                      int64_t heads, int64_t kv_heads, int64_t hd, int threads) {
  ZEROTH_CHECK(kv_heads > 0 && heads % kv_heads == 0, "{} heads cannot share {} kv heads", heads, kv_heads);
  const int64_t group = heads / kv_heads, qdim = heads * hd, kvdim = kv_heads * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  // One work item per (sequence, head).
  parallel_for(int64_t(seqs.size()) * heads, 1, threads, [&](int64_t i0, int64_t i1) {
    std::vector<float> att;
    for (int64_t it = i0; it < i1; ++it) {
      const SeqSpan sq = seqs[size_t(it / heads)];
      const int64_t h = it % heads;
      attend_head(q + sq.start * qdim, k + sq.start * kvdim, v + sq.start * kvdim, out + sq.start * qdim, 0,
                  sq.length, h, h / group, hd, qdim, kvdim, scale, att);
    }
  });
}

void causal_attention_cached(const float* q, const float* k_cache, const float* v_cache, float* out, int64_t p0,
                             int64_t m, int64_t heads, int64_t kv_heads, int64_t hd, int threads) {
  ZEROTH_CHECK(kv_heads > 0 && heads % kv_heads == 0, "{} heads cannot share {} kv heads", heads, kv_heads);
  const int64_t group = heads / kv_heads, qdim = heads * hd, kvdim = kv_heads * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  parallel_for(heads, 1, threads, [&](int64_t h0, int64_t h1) {
    std::vector<float> att;
    for (int64_t h = h0; h < h1; ++h)
      attend_head(q, k_cache, v_cache, out, p0, m, h, h / group, hd, qdim, kvdim, scale, att);
  });
}

void silu_mul(float* g, const float* u, int64_t n, int threads) {
  parallel_for(n, kElemGrain, threads, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  });
}

void gelu_tanh(float* x, int64_t n, int threads) {
  parallel_for(n, kElemGrain, threads, [&](int64_t a, int64_t b) {
    constexpr float c = 0.7978845608028654f;  // sqrt(2/pi)
    for (int64_t i = a; i < b; ++i) {
      const float t = x[i];
      x[i] = 0.5f * t * (1.0f + std::tanh(c * (t + 0.044715f * t * t * t)));
    }
  });
}

void relu(float* x, int64_t n, int threads) {
  parallel_for(n, kElemGrain, threads, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void add_inplace(float* y, const float* x, int64_t n, int threads) {
  parallel_for(n, kElemGrain, threads, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) y[i] += x[i];
  });
}

void logsumexp_add(const float* x, int64_t n, float& max, double& sum) {
  float bm = -INFINITY;
  for (int64_t i = 0; i < n; ++i) bm = std::max(bm, x[i]);
  if (bm > max) {  // rescale the sum so far to the new maximum
    if (sum != 0.0) sum *= std::exp(double(max) - double(bm));
    max = bm;
  }
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i] - max));
  sum += s;
}

void logsumexp_rows(const float* x, int64_t n, int64_t d, float* out, int threads) {
  parallel_for(n, row_grain(d), threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float mx = -INFINITY;
      double s = 0.0;
      logsumexp_add(x + r * d, d, mx, s);
      out[r] = mx + float(std::log(s));
    }
  });
}

}  // namespace zeroth
