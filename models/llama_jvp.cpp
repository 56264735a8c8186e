// Forward-mode directional derivatives through the LLaMA forward with the base
// frozen (and usually quantized): for directions z_1..z_count in the space of
// the LoRA factors (and norm gains when they train), one pass carries beside
// every activation a its tangents ȧ_c = da(θ + ε·z_c)/dε at ε = 0, so the loss's
// tangent is dL/dε = ⟨∇L, z_c⟩ exactly (up to float rounding), with no tape.
// Shapes as in llama.cpp; every buffer holds S = 1 + count blocks of (n, width):
// the primal, then tangent 1..count.
//
// Tangent rules, layer by layer (core/ops_jvp.h for the nonlinear ones):
//   embedding        0 (frozen)
//   rmsnorm          ẏ = ẇ⊙x·inv + w⊙inv⊙(ẋ − x·inv²·mean(x⊙ẋ))
//   projection       ẏ = ẋ·Wᵀ + s·((ẋ·Aᵀ + x·Ȧᵀ)·Bᵀ + (x·Aᵀ)·Ḃᵀ); without an adapter the
//                    frozen map (base + LQ-LoRA factors) applied to ẋ
//   rope, residual   linear: the same op on the tangent rows
//   attention        ṡ = scale·(q̇·kᵀ + q·k̇ᵀ), ṗ = p⊙(ṡ − Σ p ṡ), ȯ = ṗ·v + p·v̇
//   swiglu           ḣ = ġ⊙u⊙silu'(g) + u̇⊙silu(g)
//   output layer     CausalLM::logprob_jvp
// The tangent rows go through the base weight as one product of count·n rows
// (matmul reads the packed blocks, never an f32 copy of W); the primal rows run
// the forward's own calls, so L has the forward's bits.
#define EIGEN_DONT_PARALLELIZE 1  // the low-rank products are small; our threads run the big ones
#include <Eigen/Core>
#include <cstdint>

#include "core/error.h"
#include "core/matmul.h"
#include "core/ops_jvp.h"
#include "models/llama.h"

namespace zeroth {

struct LlamaModel::JvpLayer {
  std::vector<float> xn, q, k, v, att, o, g, u;  // S blocks of (n, d|q|kv|q|d|h|h)
};

namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMat>;
using ConstMap = Eigen::Map<const RowMat>;
}  // namespace

void LlamaModel::norm_jvp(const float* x, float* out, int64_t n, int64_t count, int layer, NormSlot slot,
                          const TokenBatch& batch, const AdapterSet& adapters, const AdapterSet& directions) const {
  const int64_t d = w_.config.dim;
  norm_rows(x, out, n, layer, slot, &batch, &adapters);  // the forward's primal
  std::vector<float> scratch, wdot;
  const float* w = norm_gains(layer, slot, adapters, scratch);
  if (adapters.overrides_norms()) {
    wdot.resize(size_t(count * d));
    for (int64_t c = 0; c < count; ++c) {
      float* dst = wdot.data() + c * d;
      const float* z = directions.norm(layer, slot, int(c), dst);
      ZEROTH_CHECK(z, "jvp: direction {} has no tangent for the norm gains of layer {}", c, layer);
      if (z != dst) std::copy_n(z, d, dst);
    }
  }
  rmsnorm_jvp(x, w, x + n * d, wdot.empty() ? nullptr : wdot.data(), out + n * d, n, d, count, w_.config.norm_eps,
              threads());
}

void LlamaModel::project_jvp(const float* x, float* y, int64_t n, int64_t count, int l, Proj p,
                             const TokenBatch& batch, const AdapterSet& adapters, const AdapterSet& directions,
                             int64_t in, int64_t out) const {
  project(x, n, l, p, y, &batch, &adapters, in, out);  // the forward's primal
  const float* xd = x + n * in;
  float* yd = y + n * out;
  if (!adapters.has(l, p)) {
    // The frozen map (the base, plus its LQ-LoRA factors if any) is linear:
    // the same product on the tangent rows.
    project(xd, count * n, l, p, yd, nullptr, nullptr, in, out);
    return;
  }
  matmul(xd, count * n, in, w_.layers[size_t(l)].proj(p), yd, out, threads());
  std::vector<float> scratch(adapters.scratch_floats(l, p)), zscratch(directions.scratch_floats(l, p));
  const LoraFactors f = adapters.get(l, p, 0, scratch.data());
  const ConstMap X(x, n, in), A(f.A, f.r, in), B(f.B, out, f.r);
  const RowMat t = X * A.transpose();  // (n, r)
  for (int64_t c = 0; c < count; ++c) {
    const LoraFactors z = directions.get(l, p, int(c), zscratch.data());
    ZEROTH_CHECK(z.A && z.B, "jvp: direction {} has no tangent for the {} adapter of layer {}", c, proj_name(p), l);
    const ConstMap Xd(xd + c * n * in, n, in), Ad(z.A, f.r, in), Bd(z.B, out, f.r);
    Map Yd(yd + c * n * out, n, out);
    const RowMat td = Xd * A.transpose() + X * Ad.transpose();  // (n, r)
    Yd.noalias() += f.scale * (td * B.transpose() + t * Bd.transpose());
  }
}

void LlamaModel::layer_jvp(int l, float* x, int64_t count, const TokenBatch& batch,
                           const std::vector<int32_t>& positions, const AdapterSet& adapters,
                           const AdapterSet& directions, JvpLayer& T) const {
  // forward_hidden's calls in its order on the primal block, each followed by its tangent.
  const auto& c = w_.config;
  const int64_t n = batch.rows(), S = 1 + count, d = c.dim, h = c.hidden_dim, qd = c.q_dim(), kvd = c.kv_dim();
  norm_jvp(x, T.xn.data(), n, count, l, NormSlot::Attention, batch, adapters, directions);
  project_jvp(T.xn.data(), T.q.data(), n, count, l, Proj::Q, batch, adapters, directions, d, qd);
  project_jvp(T.xn.data(), T.k.data(), n, count, l, Proj::K, batch, adapters, directions, d, kvd);
  project_jvp(T.xn.data(), T.v.data(), n, count, l, Proj::V, batch, adapters, directions, d, kvd);
  rope(T.q.data(), positions.data(), S * n, c.n_heads, rope_, c.rope_interleaved, threads());
  rope(T.k.data(), positions.data(), S * n, c.n_kv_heads, rope_, c.rope_interleaved, threads());
  causal_attention(T.q.data(), T.k.data(), T.v.data(), T.att.data(), batch.seqs, c.n_heads, c.n_kv_heads, c.hd(),
                   threads());
  causal_attention_jvp(T.q.data(), T.k.data(), T.v.data(), T.q.data() + n * qd, T.k.data() + n * kvd,
                       T.v.data() + n * kvd, T.att.data() + n * qd, batch.seqs, c.n_heads, c.n_kv_heads, c.hd(), count,
                       threads());
  project_jvp(T.att.data(), T.o.data(), n, count, l, Proj::O, batch, adapters, directions, qd, d);
  add_inplace(x, T.o.data(), S * n * d, threads());
  norm_jvp(x, T.xn.data(), n, count, l, NormSlot::Ffn, batch, adapters, directions);
  project_jvp(T.xn.data(), T.g.data(), n, count, l, Proj::Gate, batch, adapters, directions, d, h);
  project_jvp(T.xn.data(), T.u.data(), n, count, l, Proj::Up, batch, adapters, directions, d, h);
  silu_mul_jvp(T.g.data(), T.u.data(), T.g.data() + n * h, T.u.data() + n * h, n * h, count, threads());
  silu_mul(T.g.data(), T.u.data(), n * h, threads());
  project_jvp(T.g.data(), T.o.data(), n, count, l, Proj::Down, batch, adapters, directions, h, d);
  add_inplace(x, T.o.data(), S * n * d, threads());
}

double LlamaModel::jvp(const TokenBatch& batch, const AdapterSet& adapters, const AdapterSet& directions, int count,
                       const HiddenLossJvp& loss, std::vector<double>& dots) const {
  const auto& c = w_.config;
  const int64_t n = batch.rows(), d = c.dim, S = 1 + int64_t(count);
  ZEROTH_CHECK(count >= 1, "jvp: {} directions; it needs at least one", count);
  ZEROTH_CHECK(!adapters.overrides_weights() && !adapters.overrides_embeddings() && !adapters.overrides_output(),
               "jvp: full-weight training (trainable.full) has no forward-mode path; it trains LoRA adapters and "
               "norms only");
  ZEROTH_CHECK(directions.overrides_norms() == adapters.overrides_norms(),
               "jvp: the adapters {} norms but the directions {}", adapters.overrides_norms() ? "train" : "do not train",
               directions.overrides_norms() ? "move them" : "do not move them");
  for (int l = 0; l < int(c.n_layers); ++l)
    for (int p = 0; p < kProjCount; ++p)
      ZEROTH_CHECK(adapters.has(l, Proj(p)) == directions.has(l, Proj(p)),
                   "jvp: layer {} {}: the adapters and the directions cover different projections", l,
                   proj_name(Proj(p)));
  for (const auto& vr : batch.variant_rows())
    ZEROTH_CHECK(vr.variant == 0, "jvp: the batch uses adapter variant {}; jvp runs variant 0 only", vr.variant);
  for (const auto& s : batch.seqs)
    ZEROTH_CHECK(s.length <= c.max_seq_len, "a sequence of {} tokens exceeds the context length {}", s.length,
                 c.max_seq_len);
  std::vector<int32_t> positions;  // the batch's positions for every block
  positions.reserve(size_t(S * n));
  for (int64_t s = 0; s < S; ++s) positions.insert(positions.end(), batch.positions.begin(), batch.positions.end());

  std::vector<float> x(size_t(S * n * d), 0.0f);  // the embedding is frozen: its tangents are 0
  embed(batch.tokens, x.data(), &batch, &adapters);
  JvpLayer T;
  for (auto [buf, width] : {std::pair{&T.xn, d}, {&T.o, d}, {&T.q, c.q_dim()}, {&T.att, c.q_dim()},
                            {&T.k, c.kv_dim()}, {&T.v, c.kv_dim()}, {&T.g, c.hidden_dim}, {&T.u, c.hidden_dim}})
    buf->resize(size_t(S * n * width));
  for (int l = 0; l < int(c.n_layers); ++l) layer_jvp(l, x.data(), count, batch, positions, adapters, directions, T);
  T = JvpLayer{};
  std::vector<float> dots_hidden(x.size());  // the primal block, then the tangents
  norm_jvp(x.data(), dots_hidden.data(), n, count, int(c.n_layers), NormSlot::Final, batch, adapters, directions);
  x = {};
  const std::vector<float> hidden(dots_hidden.begin(), dots_hidden.begin() + n * d);
  dots_hidden.erase(dots_hidden.begin(), dots_hidden.begin() + n * d);
  dots.assign(size_t(count), 0.0);
  const double value = loss(hidden, dots_hidden, count, dots);
  ZEROTH_CHECK(dots.size() == size_t(count), "jvp: the loss wrote {} derivatives for {} directions", dots.size(),
               count);
  return value;
}

}  // namespace zeroth
