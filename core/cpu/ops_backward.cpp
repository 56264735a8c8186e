// CPU reference of the backward ops (core/ops_backward.h).
#include "core/ops_backward.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/cpu/attention_row.h"
#include "core/error.h"
#include "core/parallel.h"

namespace zeroth {
namespace {
int64_t row_grain(int64_t d) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)); }
constexpr int64_t kElemGrain = 1 << 15;
}  // namespace

void rmsnorm_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, int64_t n, int64_t d,
                      float eps, int threads) {
  // inv_r = 1/sqrt(mean(x_r²) + eps), as the forward computes it.
  std::vector<float> inv(static_cast<size_t>(n));
  parallel_for(n, row_grain(d), threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      const float* gr = dy + r * d;
      float ss = 0.0f;
      for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
      const float iv = 1.0f / std::sqrt(ss / float(d) + eps);
      inv[size_t(r)] = iv;
      // dx = iv·(w⊙dy) − x·iv³·mean(w⊙dy⊙x)
      double dot = 0.0;
      for (int64_t i = 0; i < d; ++i) dot += double(w[i]) * double(gr[i]) * double(xr[i]);
      const float c = float(dot / double(d)) * iv * iv * iv;
      float* o = dx + r * d;
      for (int64_t i = 0; i < d; ++i) o[i] += iv * (w[i] * gr[i]) - xr[i] * c;
    }
  });
  if (!dw) return;
  // Columns in parallel, rows summed in order: the same bits on any thread count.
  parallel_for(d, 64, threads, [&](int64_t c0, int64_t c1) {
    for (int64_t i = c0; i < c1; ++i) {
      double s = 0.0;
      for (int64_t r = 0; r < n; ++r) s += double(dy[r * d + i]) * double(x[r * d + i] * inv[size_t(r)]);
      dw[i] += float(s);
    }
  });
}

// rope_backward lives beside rope in core/cpu/ops.cpp: one rotation, by θ or −θ.

void causal_attention_backward(const float* q, const float* k, const float* v, const float* dout,
                               float* dq, float* dk, float* dv, std::span<const SeqSpan> seqs, int64_t heads,
                               int64_t kv_heads, int64_t hd, int threads) {
  ZEROTH_CHECK(kv_heads > 0 && heads % kv_heads == 0, "{} heads cannot share {} kv heads", heads, kv_heads);
  const int64_t group = heads / kv_heads, qdim = heads * hd, kvdim = kv_heads * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  // Σ_j p_j·dp_j (= dout·out) is formed from the recomputed weights in double.
  parallel_for(int64_t(seqs.size()) * kv_heads, 1, threads, [&](int64_t i0, int64_t i1) {
    std::vector<float> p, dp;
    for (int64_t it = i0; it < i1; ++it) {
      const SeqSpan sq = seqs[size_t(it / kv_heads)];
      const int64_t kvh = it % kv_heads, L = sq.length;
      const float* K = k + sq.start * kvdim + kvh * hd;
      const float* V = v + sq.start * kvdim + kvh * hd;
      float* dK = dk + sq.start * kvdim + kvh * hd;
      float* dV = dv + sq.start * kvdim + kvh * hd;
      for (int64_t j = 0; j < L; ++j) {
        std::fill(dK + j * kvdim, dK + j * kvdim + hd, 0.0f);
        std::fill(dV + j * kvdim, dV + j * kvdim + hd, 0.0f);
      }
      p.resize(size_t(L));
      dp.resize(size_t(L));
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t i = 0; i < L; ++i) {
          const float* qi = q + (sq.start + i) * qdim + h * hd;
          const float* go = dout + (sq.start + i) * qdim + h * hd;
          attention_weights(qi, K, kvdim, hd, i, scale, p.data());  // the forward's weights, the same bits
          double pdp = 0.0;
          for (int64_t j = 0; j <= i; ++j) {
            float d = 0.0f;
            for (int64_t e = 0; e < hd; ++e) d += go[e] * V[j * kvdim + e];
            dp[size_t(j)] = d;
            pdp += double(p[size_t(j)]) * double(d);
          }
          float* dqi = dq + (sq.start + i) * qdim + h * hd;
          std::fill(dqi, dqi + hd, 0.0f);
          for (int64_t j = 0; j <= i; ++j) {
            const float ds = p[size_t(j)] * (dp[size_t(j)] - float(pdp)) * scale;
            const float pj = p[size_t(j)];
            for (int64_t e = 0; e < hd; ++e) {
              dqi[e] += ds * K[j * kvdim + e];
              dK[j * kvdim + e] += ds * qi[e];
              dV[j * kvdim + e] += pj * go[e];
            }
          }
        }
      }
    }
  });
}

void silu_mul_backward(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n,
                       int threads) {
  parallel_for(n, kElemGrain, threads, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      const float sg = 1.0f / (1.0f + std::exp(-g[i]));
      const float silu = g[i] * sg;
      const float d = dh[i];
      dg[i] = d * u[i] * (sg * (1.0f + g[i] * (1.0f - sg)));
      du[i] = d * silu;
    }
  });
}

}  // namespace zeroth
