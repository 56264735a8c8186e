// Shared by the LQ-LoRA tests (core decomposition, models' Fisher weighting).
#pragma once
#include <cstdint>
#include <vector>

#include "core/quant/lq_decompose.h"

namespace zeroth::test {

// Σ_ij rw_i·cw_j·(W − Q − L1·L2)_ij² for a decomposition of W (m, n) at rank r,
// in double; empty weights are 1.
inline double residual2(const std::vector<float>& w, const LqResult& res, int64_t m, int64_t n, int64_t r,
                        const std::vector<float>& rw = {}, const std::vector<float>& cw = {}) {
  double err = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = res.q[size_t(i * n + j)];
      for (int64_t k = 0; k < r; ++k) s += double(res.l1[size_t(i * r + k)]) * double(res.l2[size_t(k * n + j)]);
      const double d = double(w[size_t(i * n + j)]) - s;
      err += d * d * (rw.empty() ? 1.0 : rw[size_t(i)]) * (cw.empty() ? 1.0 : cw[size_t(j)]);
    }
  return err;
}

}  // namespace zeroth::test
