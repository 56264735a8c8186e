// Backpropagation through the LLaMA forward with the base frozen (and usually
// quantized): gradients for the LoRA factors and, when they train, the RMSNorm
// gains; nothing is computed for the base weights. Shapes as in llama.cpp:
// n = token rows, d = dim, q = n_heads·hd, kv = n_kv_heads·hd, h = hidden_dim.
//
// Forward per layer (what the tape keeps, keep-all mode):
//   x ─norm─> xn ─Q,K,V─> q,k,v ─rope─> attention ─> att ─O─> +x = x2
//   x2 ─norm─> xn2 ─gate,up─> g,u ─silu(g)·u─> ─down─> +x2 = next x
// Backward walks it in reverse; every product with a base weight is
// dx = dy · W from its packed blocks (matmul_dx), and each adapter adds
//   t = x·Aᵀ,  dB += s·dyᵀ·t,  dt = s·dy·B,  dA += dtᵀ·x,  dx += dt·A.
// With checkpointing only each layer's input x is kept; the layer is run again
// (the same forward, the same bits) just before its backward.
#define EIGEN_DONT_PARALLELIZE 1  // the low-rank products are small; our threads run the big ones
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "core/matmul.h"
#include "core/ops_backward.h"
#include "models/llama.h"

namespace zeroth {

struct LlamaModel::LayerTape {
  std::vector<float> x, xn, q, k, v, att, x2, xn2, g, u;  // (n, d|q|kv|h) as named above
};

namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMat>;
using ConstMap = Eigen::Map<const RowMat>;

void sized(std::vector<float>& v, int64_t n) { v.resize(size_t(n)); }
}  // namespace

const float* LlamaModel::norm_gains(int layer, NormSlot slot, const AdapterSet& adapters,
                                    std::vector<float>& scratch) const {
  if (adapters.overrides_norms()) {
    scratch.resize(size_t(w_.config.dim));
    if (const float* g = adapters.norm(layer, slot, 0, scratch.data())) return g;
  }
  return norm_weight(layer, slot).data<float>();
}

void LlamaModel::layer_forward(int l, float* x, const TokenBatch& batch, const AdapterSet& adapters,
                               LayerTape& T) const {
  // The same calls in the same order as forward_hidden: the same bits.
  const auto& c = w_.config;
  const int64_t n = batch.rows(), d = c.dim, h = c.hidden_dim;
  T.x.assign(x, x + n * d);
  sized(T.xn, n * d); sized(T.q, n * c.q_dim()); sized(T.k, n * c.kv_dim()); sized(T.v, n * c.kv_dim());
  sized(T.att, n * c.q_dim()); sized(T.xn2, n * d); sized(T.g, n * h); sized(T.u, n * h);
  std::vector<float> o(size_t(n * d));
  norm_rows(x, T.xn.data(), n, l, NormSlot::Attention, &batch, &adapters);
  project(T.xn.data(), n, l, Proj::Q, T.q.data(), &batch, &adapters, d, c.q_dim());
  project(T.xn.data(), n, l, Proj::K, T.k.data(), &batch, &adapters, d, c.kv_dim());
  project(T.xn.data(), n, l, Proj::V, T.v.data(), &batch, &adapters, d, c.kv_dim());
  rope(T.q.data(), batch.positions.data(), n, c.n_heads, rope_, c.rope_interleaved, threads());
  rope(T.k.data(), batch.positions.data(), n, c.n_kv_heads, rope_, c.rope_interleaved, threads());
  causal_attention(T.q.data(), T.k.data(), T.v.data(), T.att.data(), batch.seqs, c.n_heads, c.n_kv_heads, c.hd(),
                   threads());
  project(T.att.data(), n, l, Proj::O, o.data(), &batch, &adapters, c.q_dim(), d);
  add_inplace(x, o.data(), n * d, threads());
  T.x2.assign(x, x + n * d);
  norm_rows(x, T.xn2.data(), n, l, NormSlot::Ffn, &batch, &adapters);
  project(T.xn2.data(), n, l, Proj::Gate, T.g.data(), &batch, &adapters, d, h);
  project(T.xn2.data(), n, l, Proj::Up, T.u.data(), &batch, &adapters, d, h);
  std::vector<float> act = T.g;
  silu_mul(act.data(), T.u.data(), n * h, threads());
  project(act.data(), n, l, Proj::Down, o.data(), &batch, &adapters, h, d);
  add_inplace(x, o.data(), n * d, threads());
}

void LlamaModel::project_backward(const float* x, const float* dy, float* dx, bool accumulate, int64_t n, int l,
                                  Proj p, const AdapterSet& adapters, AdapterGradients& grads, int64_t in,
                                  int64_t out, const BackwardOptions& opt) const {
  if (opt.projection_hook) opt.projection_hook(l, p, x, dy, n, in, out);
  matmul_dx(dy, n, out, w_.layers[size_t(l)].proj(p), dx, in, accumulate, threads());
  if (!adapters.has(l, p)) {
    // An LQ-LoRA base's frozen low-rank part (W ≈ Q + L1·L2) on a projection
    // without an adapter: dx += scale·(dy·L1)·L2, no parameter gradient.
    const LoraFactors f = base_low_rank(l, p);
    if (f.r == 0) return;
    const ConstMap A(f.A, f.r, in), B(f.B, out, f.r), DY(dy, n, out);
    Map DX(dx, n, in);
    const RowMat dt = f.scale * (DY * B);
    DX.noalias() += dt * A;
    return;
  }
  std::vector<float> scratch(adapters.scratch_floats(l, p));
  const LoraFactors f = adapters.get(l, p, 0, scratch.data());
  const ConstMap X(x, n, in), DY(dy, n, out), A(f.A, f.r, in), B(f.B, out, f.r);
  Map dA(grads.dA(l, p).data(), f.r, in), dB(grads.dB(l, p).data(), out, f.r), DX(dx, n, in);
  const RowMat t = X * A.transpose();           // (n, r)
  dB.noalias() += f.scale * (DY.transpose() * t);
  const RowMat dt = f.scale * (DY * B);         // (n, r)
  dA.noalias() += dt.transpose() * X;
  DX.noalias() += dt * A;
}

void LlamaModel::layer_backward(int l, const LayerTape& T, float* dx, const TokenBatch& batch,
                                const AdapterSet& adapters, AdapterGradients& grads, const BackwardOptions& opt) const {
  const auto& c = w_.config;
  const int64_t n = batch.rows(), d = c.dim, h = c.hidden_dim;
  const bool norms = adapters.overrides_norms();
  std::vector<float> scratch;
  // MLP: next x = x2 + down(silu(g)·u); dx holds ∂L/∂(next x).
  std::vector<float> act = T.g, dact(size_t(n * h)), dg(size_t(n * h)), du(size_t(n * h)), dxn(size_t(n * d));
  silu_mul(act.data(), T.u.data(), n * h, threads());
  project_backward(act.data(), dx, dact.data(), false, n, l, Proj::Down, adapters, grads, h, d, opt);
  silu_mul_backward(T.g.data(), T.u.data(), dact.data(), dg.data(), du.data(), n * h, threads());
  project_backward(T.xn2.data(), dg.data(), dxn.data(), false, n, l, Proj::Gate, adapters, grads, d, h, opt);
  project_backward(T.xn2.data(), du.data(), dxn.data(), true, n, l, Proj::Up, adapters, grads, d, h, opt);
  rmsnorm_backward(T.x2.data(), norm_gains(l, NormSlot::Ffn, adapters, scratch), dxn.data(), dx,
                   norms ? grads.dnorm(l, NormSlot::Ffn).data() : nullptr, n, d, c.norm_eps, threads());
  // Attention: x2 = x + O(attention(rope(Q xn), rope(K xn), V xn)); dx holds ∂L/∂x2.
  std::vector<float> datt(size_t(n * c.q_dim())), dq(datt.size()), dk(size_t(n * c.kv_dim())), dv(dk.size());
  project_backward(T.att.data(), dx, datt.data(), false, n, l, Proj::O, adapters, grads, c.q_dim(), d, opt);
  causal_attention_backward(T.q.data(), T.k.data(), T.v.data(), datt.data(), dq.data(), dk.data(), dv.data(),
                            batch.seqs, c.n_heads, c.n_kv_heads, c.hd(), threads());
  rope_backward(dq.data(), batch.positions.data(), n, c.n_heads, rope_, c.rope_interleaved, threads());
  rope_backward(dk.data(), batch.positions.data(), n, c.n_kv_heads, rope_, c.rope_interleaved, threads());
  project_backward(T.xn.data(), dq.data(), dxn.data(), false, n, l, Proj::Q, adapters, grads, d, c.q_dim(), opt);
  project_backward(T.xn.data(), dk.data(), dxn.data(), true, n, l, Proj::K, adapters, grads, d, c.kv_dim(), opt);
  project_backward(T.xn.data(), dv.data(), dxn.data(), true, n, l, Proj::V, adapters, grads, d, c.kv_dim(), opt);
  rmsnorm_backward(T.x.data(), norm_gains(l, NormSlot::Attention, adapters, scratch), dxn.data(), dx,
                   norms ? grads.dnorm(l, NormSlot::Attention).data() : nullptr, n, d, c.norm_eps, threads());
}

double LlamaModel::backward(const TokenBatch& batch, const AdapterSet& adapters, const HiddenLoss& loss,
                            AdapterGradients& grads, const BackwardOptions& opt) const {
  const auto& c = w_.config;
  const int64_t n = batch.rows(), d = c.dim;
  const int L = int(c.n_layers);
  ZEROTH_CHECK(!adapters.overrides_weights() && !adapters.overrides_embeddings() && !adapters.overrides_output(),
               "backward: full-weight training (trainable.full) has no gradient path; it trains LoRA adapters "
               "and norms only");
  for (const auto& vr : batch.variant_rows())
    ZEROTH_CHECK(vr.variant == 0, "backward: the batch uses adapter variant {}; backward runs variant 0 only",
                 vr.variant);
  for (const auto& s : batch.seqs)
    ZEROTH_CHECK(s.length <= c.max_seq_len, "a sequence of {} tokens exceeds the context length {}", s.length,
                 c.max_seq_len);
  // Gradient buffers sized on first use, checked after.
  grads.A.resize(size_t(L) * kProjCount);
  grads.B.resize(grads.A.size());
  const auto dims = projection_dims();
  for (int l = 0; l < L; ++l)
    for (int pi = 0; pi < kProjCount; ++pi) {
      const Proj p = Proj(pi);
      size_t na = 0, nb = 0;
      if (adapters.has(l, p)) {
        std::vector<float> scratch(adapters.scratch_floats(l, p));
        const int64_t r = adapters.get(l, p, 0, scratch.data()).r;
        na = size_t(r * dims[size_t(pi)][0]);
        nb = size_t(dims[size_t(pi)][1] * r);
      }
      for (auto [g, want] : {std::pair{&grads.dA(l, p), na}, {&grads.dB(l, p), nb}}) {
        if (g->empty()) g->assign(want, 0.0f);
        ZEROTH_CHECK(g->size() == want, "backward: a gradient buffer of layer {} {} holds {} floats, expected {}", l,
                     proj_name(p), g->size(), want);
      }
    }
  if (adapters.overrides_norms()) {
    grads.norms.resize(size_t(2 * L + 1));
    for (auto& g : grads.norms) {
      if (g.empty()) g.assign(size_t(d), 0.0f);
      ZEROTH_CHECK(g.size() == size_t(d), "backward: a norm gradient buffer holds {} floats, expected {}", g.size(), d);
    }
  }

  // Forward, keeping every layer's tape or only its input.
  std::vector<float> x(size_t(n * d));
  embed(batch.tokens, x.data(), &batch, &adapters);
  std::vector<LayerTape> tapes(opt.checkpoint ? 1 : size_t(L));
  std::vector<std::vector<float>> inputs(opt.checkpoint ? size_t(L) : 0);
  for (int l = 0; l < L; ++l) {
    LayerTape& T = tapes[opt.checkpoint ? 0 : size_t(l)];
    layer_forward(l, x.data(), batch, adapters, T);
    if (opt.checkpoint) inputs[size_t(l)] = std::move(T.x);
  }
  if (opt.checkpoint) tapes[0] = LayerTape{};  // free the last layer's activations before the loss
  std::vector<float> hidden(x.size()), dhidden(x.size(), 0.0f);
  norm_rows(x.data(), hidden.data(), n, L, NormSlot::Final, &batch, &adapters);
  const double value = loss(hidden, dhidden);
  ZEROTH_CHECK(dhidden.size() == x.size(), "backward: the loss resized d_hidden");
  std::vector<float> scratch, dx(x.size(), 0.0f);
  rmsnorm_backward(x.data(), norm_gains(L, NormSlot::Final, adapters, scratch), dhidden.data(), dx.data(),
                   adapters.overrides_norms() ? grads.dnorm(L, NormSlot::Final).data() : nullptr, n, d, c.norm_eps,
                   threads());
  hidden = {};
  dhidden = {};
  for (int l = L - 1; l >= 0; --l) {
    if (opt.checkpoint) {
      x = std::move(inputs[size_t(l)]);
      layer_forward(l, x.data(), batch, adapters, tapes[0]);  // the same bits as the first time
      layer_backward(l, tapes[0], dx.data(), batch, adapters, grads, opt);
    } else {
      layer_backward(l, tapes[size_t(l)], dx.data(), batch, adapters, grads, opt);
      tapes[size_t(l)] = LayerTape{};  // release as we go
    }
  }
  return value;
}

}  // namespace zeroth
