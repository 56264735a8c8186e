// CPU reference of the tangent rules (core/ops_jvp.h).
#include "core/ops_jvp.h"

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

void rmsnorm_jvp(const float* x, const float* w, const float* xdot, const float* wdot, float* ydot, int64_t n,
                 int64_t d, int64_t count, float eps, int threads) {
  parallel_for(n, row_grain(d * (count + 1)), threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      float ss = 0.0f;  // the forward's sum, so inv has the forward's bits
      for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
      const float inv = 1.0f / std::sqrt(ss / float(d) + eps);
      for (int64_t c = 0; c < count; ++c) {
        const float* xd = xdot + (c * n + r) * d;
        float* yd = ydot + (c * n + r) * d;
        double dot = 0.0;  // Σ x⊙ẋ
        for (int64_t i = 0; i < d; ++i) dot += double(xr[i]) * double(xd[i]);
        const float m = float(dot / double(d)) * inv * inv;
        for (int64_t i = 0; i < d; ++i) yd[i] = w[i] * (inv * (xd[i] - xr[i] * m));
        if (wdot) {
          const float* wd = wdot + c * d;
          for (int64_t i = 0; i < d; ++i) yd[i] += wd[i] * (inv * xr[i]);
        }
      }
    }
  });
}

void causal_attention_jvp(const float* q, const float* k, const float* v, const float* qdot, const float* kdot,
                          const float* vdot, float* outdot, std::span<const SeqSpan> seqs, int64_t heads,
                          int64_t kv_heads, int64_t hd, int64_t count, int threads) {
  ZEROTH_CHECK(kv_heads > 0 && heads % kv_heads == 0, "{} heads cannot share {} kv heads", heads, kv_heads);
  const int64_t group = heads / kv_heads, qdim = heads * hd, kvdim = kv_heads * hd;
  int64_t n = 0;  // rows of one tangent: the tangents are (count, n, ·)
  for (const SeqSpan& s : seqs) n = std::max(n, s.start + s.length);
  const float scale = 1.0f / std::sqrt(float(hd));
  // One work item per (sequence, head), as the forward; each query row's
  // weights serve every tangent.
  parallel_for(int64_t(seqs.size()) * heads, 1, threads, [&](int64_t i0, int64_t i1) {
    std::vector<float> p, sd;
    for (int64_t it = i0; it < i1; ++it) {
      const SeqSpan sq = seqs[size_t(it / heads)];
      const int64_t h = it % heads, kvh = h / group, L = sq.length;
      const float* K = k + sq.start * kvdim + kvh * hd;
      const float* V = v + sq.start * kvdim + kvh * hd;
      p.resize(size_t(L));
      sd.resize(size_t(L));
      for (int64_t i = 0; i < L; ++i) {
        const float* qi = q + (sq.start + i) * qdim + h * hd;
        attention_weights(qi, K, kvdim, hd, i, scale, p.data());
        for (int64_t c = 0; c < count; ++c) {
          const int64_t tq = c * n * qdim, tkv = c * n * kvdim;
          const float* qd = qdot + tq + (sq.start + i) * qdim + h * hd;
          const float* Kd = kdot + tkv + sq.start * kvdim + kvh * hd;
          const float* Vd = vdot + tkv + sq.start * kvdim + kvh * hd;
          // ṡ_j and Σ_j p_j·ṡ_j (in double).
          double mean = 0.0;
          for (int64_t j = 0; j <= i; ++j) {
            const float* kj = K + j * kvdim;
            const float* kdj = Kd + j * kvdim;
            float dot = 0.0f;
            for (int64_t e = 0; e < hd; ++e) dot += qd[e] * kj[e] + qi[e] * kdj[e];
            sd[size_t(j)] = dot * scale;
            mean += double(p[size_t(j)]) * double(sd[size_t(j)]);
          }
          float* od = outdot + tq + (sq.start + i) * qdim + h * hd;
          std::fill(od, od + hd, 0.0f);
          for (int64_t j = 0; j <= i; ++j) {
            const float pj = p[size_t(j)], pdj = pj * (sd[size_t(j)] - float(mean));
            const float* vj = V + j * kvdim;
            const float* vdj = Vd + j * kvdim;
            for (int64_t e = 0; e < hd; ++e) od[e] += pdj * vj[e] + pj * vdj[e];
          }
        }
      }
    }
  });
}

void silu_mul_jvp(const float* g, const float* u, float* gdot, const float* udot, int64_t n, int64_t count,
                  int threads) {
  parallel_for(n, kElemGrain, threads, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      const float sg = 1.0f / (1.0f + std::exp(-g[i]));
      const float silu = g[i] * sg, dsilu = sg * (1.0f + g[i] * (1.0f - sg));
      for (int64_t c = 0; c < count; ++c) {
        float& gd = gdot[c * n + i];
        gd = gd * u[i] * dsilu + udot[c * n + i] * silu;
      }
    }
  });
}

}  // namespace zeroth
