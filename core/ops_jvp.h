// Forward-mode (tangent) rules of the nonlinear row-wise ops in core/ops.h, for
// directional derivatives through a frozen base (models/llama_jvp.cpp). Each
// takes the op's primal inputs and `count` tangents of them, stored one after
// another (tangent c of an (n, d) input at offset c·n·d), and writes the
// output's tangents in the same layout. Linear ops need no rule of their own:
// RoPE's tangent is rope() of the tangent, a residual's is add_inplace.
// CPU reference implementations; reductions run in a fixed order, so results
// do not depend on the thread count.
#pragma once
#include <cstdint>
#include <span>

#include "core/ops.h"

namespace zeroth {

// y = rmsnorm(x)·w with inv = 1/sqrt(mean(x²) + eps):
//   ẏ = ẇ⊙x·inv + w⊙inv⊙(ẋ − x·inv²·mean(x⊙ẋ))
// x (n, d); w (d); xdot, ydot (count, n, d); wdot (count, d), or null when the
// gains are frozen.
void rmsnorm_jvp(const float* x, const float* w, const float* xdot, const float* wdot, float* ydot, int64_t n,
                 int64_t d, int64_t count, float eps, int threads = 0);

// Tangent of causal_attention over packed sequences: q, k, v are its inputs
// (after RoPE), qdot (count, n, heads·hd), kdot and vdot (count, n, kv_heads·hd)
// their tangents; writes outdot (count, n, heads·hd). With s = scale·q·kᵀ and
// p = softmax(s) per query row:
//   ṡ = scale·(q̇·kᵀ + q·k̇ᵀ),  ṗ = p⊙(ṡ − Σ p ṡ),  ȯut = ṗ·v + p·v̇.
// p is recomputed per query row with the forward's arithmetic (nothing of size
// seq² is stored) and shared by the `count` tangents.
void causal_attention_jvp(const float* q, const float* k, const float* v, const float* qdot, const float* kdot,
                          const float* vdot, float* outdot, std::span<const SeqSpan> seqs, int64_t heads,
                          int64_t kv_heads, int64_t hd, int64_t count, int threads = 0);

// Tangent of h = silu(g)⊙u, in place of ġ: ġ ← ġ⊙u⊙silu'(g) + u̇⊙silu(g).
// g, u (n) are silu_mul's inputs (call this before silu_mul overwrites g);
// gdot, udot (count, n).
void silu_mul_jvp(const float* g, const float* u, float* gdot, const float* udot, int64_t n, int64_t count,
                  int threads = 0);

}  // namespace zeroth
