// Backward of the row-wise ops in core/ops.h, for backpropagation through a
// frozen base into low-rank adapters (and norm gains). Same layouts as the
// forward ops; `dy` is the gradient of the loss with respect to the op's output.
// Outputs marked "+=" accumulate into what the caller holds (residual streams
// sum several branches); the others overwrite. CPU reference implementations;
// every reduction runs in a fixed order, so results do not depend on threads.
#pragma once
#include <cstdint>
#include <span>

#include "core/ops.h"

namespace zeroth {

// y = rmsnorm(x) · w:   dx (n, d) += ∂L/∂x;  dw (d) += Σ_rows dy ⊙ x / rms (dw may be null).
void rmsnorm_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, int64_t n, int64_t d,
                      float eps, int threads = 0);

// The inverse rotation of rope(), applied in place to a gradient (n, heads·hd):
// RoPE is orthogonal, so its backward is its transpose.
void rope_backward(float* dx, const int32_t* positions, int64_t n, int64_t heads, const RopeTable& table,
                   bool interleaved, int threads = 0);

// Backward of causal_attention over packed sequences: q, k, v are the forward's
// inputs (after RoPE); dout (n, heads·hd) the gradient of its output.
// Writes dq (n, heads·hd), dk and dv (n, kv_heads·hd). Attention weights are
// recomputed per query row (nothing of size seq² is stored). Work is split by
// (sequence, kv head), so the query heads that share a kv head add into its
// dk/dv on one thread, in head order.
void causal_attention_backward(const float* q, const float* k, const float* v, const float* dout,
                               float* dq, float* dk, float* dv, std::span<const SeqSpan> seqs, int64_t heads,
                               int64_t kv_heads, int64_t hd, int threads = 0);

// h = silu(g) ⊙ u:   dg = dh ⊙ u ⊙ silu'(g),  du = dh ⊙ silu(g)   (g, u: the forward's inputs).
void silu_mul_backward(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n,
                       int threads = 0);

}  // namespace zeroth
