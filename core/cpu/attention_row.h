// The attention weights of one query row, shared by causal attention's forward,
// backward and tangent (core/cpu/ops.cpp, ops_backward.cpp, ops_jvp.cpp) so that
// all three recompute the same bits.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace zeroth {

// p[j] = softmax_j(scale · q·k_j) over keys j = 0..last of one kv head: q (hd),
// key rows k + j·kvdim (hd each); p holds last + 1 floats. Dot products, max,
// exponentials and the sum run in index order in float.
inline void attention_weights(const float* q, const float* k, int64_t kvdim, int64_t hd, int64_t last, float scale,
                              float* p) {
  float mx = -INFINITY;
  for (int64_t j = 0; j <= last; ++j) {
    const float* kj = k + j * kvdim;
    float dot = 0.0f;
    for (int64_t e = 0; e < hd; ++e) dot += q[e] * kj[e];
    p[j] = dot * scale;
    mx = std::max(mx, p[j]);
  }
  float sum = 0.0f;
  for (int64_t j = 0; j <= last; ++j) {
    p[j] = std::exp(p[j] - mx);
    sum += p[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j <= last; ++j) p[j] *= inv;
}

}  // namespace zeroth
