// The LLaMA forward pass, top to bottom. Shapes: n = token rows of the batch,
// d = dim, q = n_heads·hd, kv = n_kv_heads·hd, h = hidden_dim, V = vocab.
#include "models/llama.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "core/matmul.h"
#include "core/parallel.h"
#include "core/quant/quant.h"

namespace zeroth {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMap = Eigen::Map<RowMat>;
using ConstRowMap = Eigen::Map<const RowMat>;

void LlamaConfig::validate() const {
  auto pos = [](int64_t v, const char* name) {
    ZEROTH_CHECK(v > 0, "model config: {} must be positive, got {}", name, v);
  };
  pos(dim, "dim"); pos(hidden_dim, "hidden_dim"); pos(n_layers, "n_layers"); pos(n_heads, "n_heads");
  pos(n_kv_heads, "n_kv_heads"); pos(vocab_size, "vocab_size"); pos(max_seq_len, "max_seq_len");
  ZEROTH_CHECK(head_dim > 0 || dim % n_heads == 0, "model config: dim {} is not divisible by n_heads {}", dim,
               n_heads);
  ZEROTH_CHECK(n_heads % n_kv_heads == 0, "model config: n_heads {} is not a multiple of n_kv_heads {}", n_heads,
               n_kv_heads);
  ZEROTH_CHECK(hd() % 2 == 0, "model config: head size {} must be even for RoPE", hd());
  ZEROTH_CHECK(norm_eps > 0 && rope_theta > 0, "model config: norm_eps and rope_theta must be positive");
}

std::string LlamaConfig::describe() const {
  return fmt::format("llama: dim {}, hidden {}, {} layers, {} heads ({} kv, head size {}), vocab {}, context {}, "
                     "{} embeddings, rope theta {}{}",
                     dim, hidden_dim, n_layers, n_heads, n_kv_heads, hd(), vocab_size, max_seq_len,
                     tie_embeddings ? "tied" : "untied", rope_theta,
                     rope_scaling.factor > 0 ? fmt::format(" (llama3 scaling x{})", rope_scaling.factor) : "");
}

const Tensor& LlamaLayer::proj(Proj p) const {
  switch (p) {
    case Proj::Q: return wq;
    case Proj::K: return wk;
    case Proj::V: return wv;
    case Proj::O: return wo;
    case Proj::Gate: return w_gate;
    case Proj::Up: return w_up;
    case Proj::Down: return w_down;
  }
  return wq;
}

void LlamaWeights::validate(const std::string& source) const {
  config.validate();
  const auto& c = config;
  auto expect = [&](const Tensor& t, const Shape& shape, const std::string& name, bool need_f32) {
    ZEROTH_CHECK(t.defined(), "{}: tensor {} is missing", source, name);
    ZEROTH_CHECK(t.shape() == shape, "{}: tensor {} has shape {}, expected {}", source, name, shape_str(t.shape()),
                 shape_str(shape));
    ZEROTH_CHECK(!need_f32 || t.dtype() == DType::F32, "{}: tensor {} must be f32, is {}", source, name,
                 dtype_name(t.dtype()));
    ZEROTH_CHECK(t.is_contiguous(), "{}: tensor {} is not contiguous", source, name);
  };
  expect(tok_embeddings, {c.vocab_size, c.dim}, "token embeddings", false);
  ZEROTH_CHECK(int64_t(layers.size()) == c.n_layers, "{}: {} layers loaded, config says {}", source, layers.size(),
               c.n_layers);
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto& L = layers[l];
    const std::string p = fmt::format("layer {} ", l);
    expect(L.attn_norm, {c.dim}, p + "attention norm", true);
    expect(L.wq, {c.q_dim(), c.dim}, p + "wq", false);
    expect(L.wk, {c.kv_dim(), c.dim}, p + "wk", false);
    expect(L.wv, {c.kv_dim(), c.dim}, p + "wv", false);
    expect(L.wo, {c.dim, c.q_dim()}, p + "wo", false);
    expect(L.ffn_norm, {c.dim}, p + "ffn norm", true);
    expect(L.w_gate, {c.hidden_dim, c.dim}, p + "gate", false);
    expect(L.w_up, {c.hidden_dim, c.dim}, p + "up", false);
    expect(L.w_down, {c.dim, c.hidden_dim}, p + "down", false);
    for (int pi = 0; pi < kProjCount; ++pi) {
      const Tensor &a = L.low_rank_a[size_t(pi)], &b = L.low_rank_b[size_t(pi)];
      if (!a.defined() && !b.defined()) continue;
      const std::string n = p + std::string(proj_name(Proj(pi))) + " low-rank ";
      const Tensor& w = L.proj(Proj(pi));
      ZEROTH_CHECK(a.defined() && b.defined() && a.rank() == 2, "{}: {}factors must come in pairs of matrices", source, n);
      expect(a, {a.dim(0), w.dim(1)}, n + "A (L2)", true);
      expect(b, {w.dim(0), a.dim(0)}, n + "B (L1)", true);
    }
  }
  expect(final_norm, {c.dim}, "final norm", true);
  expect(output, {c.vocab_size, c.dim}, "output", false);
}

int64_t LlamaWeights::parameter_count() const {
  int64_t n = tok_embeddings.numel() + final_norm.numel();
  if (output.storage() != tok_embeddings.storage() || output.byte_offset() != tok_embeddings.byte_offset())
    n += output.numel();
  for (const auto& L : layers)
    for (const Tensor* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down})
      n += t->numel();
  for (const auto& L : layers)
    for (int p = 0; p < kProjCount; ++p)
      if (L.low_rank_a[size_t(p)].defined()) n += L.low_rank_a[size_t(p)].numel() + L.low_rank_b[size_t(p)].numel();
  return n;
}

size_t LlamaWeights::weight_bytes() const {
  size_t n = tok_embeddings.nbytes() + final_norm.nbytes();
  if (output.storage() != tok_embeddings.storage() || output.byte_offset() != tok_embeddings.byte_offset())
    n += output.nbytes();
  for (const auto& L : layers)
    for (const Tensor* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down})
      n += t->nbytes();
  for (const auto& L : layers)
    for (int p = 0; p < kProjCount; ++p)
      if (L.low_rank_a[size_t(p)].defined()) n += L.low_rank_a[size_t(p)].nbytes() + L.low_rank_b[size_t(p)].nbytes();
  return n;
}

LlamaModel::LlamaModel(LlamaWeights weights, int threads) : CausalLM(threads), w_(std::move(weights)) {
  w_.validate("model");
  const auto& c = w_.config;
  rope_ = make_rope_table(c.hd(), c.max_seq_len, c.rope_theta, c.rope_scaling);
}

LoraFactors LlamaModel::base_low_rank(int layer, Proj p) const {
  const auto& L = w_.layers[size_t(layer)];
  const Tensor& a = L.low_rank_a[size_t(p)];
  if (!a.defined()) return {};
  return {a.data<float>(), L.low_rank_b[size_t(p)].data<float>(), a.dim(0), 1.0f};
}

const Tensor& LlamaModel::norm_weight(int layer, NormSlot slot) const {
  if (slot == NormSlot::Final) return w_.final_norm;
  const auto& L = w_.layers[size_t(layer)];
  return slot == NormSlot::Attention ? L.attn_norm : L.ffn_norm;
}

namespace {
// Σ a[i]·b[i] with 8 partial sums over i mod 8, added in a fixed tree, then
// the tail: the same bits for a row wherever it sits (the compiler vectorizes
// the lanes; no reassociation is needed, so -ffp-contract=off keeps it exact).
float lora_dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] = acc[l] + a[i + l] * b[i + l];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s = s + a[i] * b[i];
  return s;
}

// Contiguous row ranges per variant; without a batch every row is variant 0.
std::vector<TokenBatch::VariantRows> rows_by_variant(const TokenBatch* batch, int64_t n) {
  if (!batch) return {{0, 0, n}};
  return batch->variant_rows();
}
}  // namespace

void LlamaModel::embed(const std::vector<int32_t>& tokens, float* x, const TokenBatch* batch,
                       const AdapterSet* adapters) const {
  const auto& c = w_.config;
  for (size_t i = 0; i < tokens.size(); ++i)
    ZEROTH_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size, "token id {} outside the vocabulary of {}", tokens[i],
                 c.vocab_size);
  auto base_row = [&](int64_t i) {
    dequantize_row(w_.tok_embeddings.dtype(), w_.tok_embeddings.row(tokens[size_t(i)]), x + i * c.dim, c.dim);
  };
  if (!adapters || !adapters->overrides_embeddings()) {
    for (int64_t i = 0; i < int64_t(tokens.size()); ++i) base_row(i);
    return;
  }
  // Full training of the embedding: only the rows of the batch's tokens, each
  // from its own variant (built row by row, never a whole perturbed matrix).
  for (const auto& vr : rows_by_variant(batch, int64_t(tokens.size())))
    for (int64_t i = vr.begin; i < vr.end; ++i) {
      float* xi = x + i * c.dim;
      if (const float* e = adapters->embedding_row(tokens[size_t(i)], vr.variant, xi)) {
        if (e != xi) std::copy_n(e, c.dim, xi);
      } else {
        base_row(i);
      }
    }
}

void LlamaModel::norm_rows(const float* x, float* out, int64_t n, int layer, NormSlot slot, const TokenBatch* batch,
                           const AdapterSet* adapters) const {
  const auto& c = w_.config;
  const float* base = norm_weight(layer, slot).data<float>();
  if (!adapters || !adapters->overrides_norms()) {
    rmsnorm(x, base, out, n, c.dim, c.norm_eps, threads());
    return;
  }
  std::vector<float> scratch(static_cast<size_t>(c.dim));
  for (const auto& vr : rows_by_variant(batch, n)) {
    const float* w = adapters->norm(layer, slot, vr.variant, scratch.data());
    rmsnorm(x + vr.begin * c.dim, w ? w : base, out + vr.begin * c.dim, vr.end - vr.begin, c.dim, c.norm_eps,
            threads());
  }
}

// y (n, out) = x (n, in) · Wᵀ, plus each variant's adapter on its own rows.
void LlamaModel::project(const float* x, int64_t n, int layer, Proj p, float* y, const TokenBatch* batch,
                         const AdapterSet* adapters, int64_t in, int64_t out) const {
  const Tensor& base = w_.layers[size_t(layer)].proj(p);
  if (adapters && adapters->overrides_weights()) {
    // Full-weight training: each variant's own f32 matrix on its own rows.
    std::vector<float> scratch(adapters->weight_scratch_floats(layer, p));
    for (const auto& vr : rows_by_variant(batch, n)) {
      const float* w = adapters->weight(layer, p, vr.variant, scratch.data());
      const Tensor wt = w ? Tensor::over(Storage::borrow(const_cast<float*>(w), size_t(in * out) * 4), 0, DType::F32,
                                         {out, in})
                          : base;
      matmul(x + vr.begin * in, vr.end - vr.begin, in, wt, y + vr.begin * out, out, threads());
    }
  } else {
    matmul(x, n, in, base, y, out, threads());
  }
  const bool adapted = adapters && adapters->has(layer, p);
  const LoraFactors frozen = adapted ? LoraFactors{} : base_low_rank(layer, p);
  if (!adapted && frozen.r == 0) return;
  // The low-rank products are skinny (r = 8): as Eigen GEMMs they packed the
  // whole input for each (variant, projection) and started their own OpenMP
  // team, a fifth of a ZO step on SmolLM2 (bench/run-zo). Instead each
  // variant's factors are built once, then fixed chunks of rows of every
  // variant run in one parallel loop on this model's threads: t = scale·x·Aᵀ
  // as r dot products with 8 fixed partial sums, then y += t·Bᵀ as r axpys over
  // a transposed copy of B. Every row's arithmetic is the same whatever the
  // batch, chunk, alignment or thread count, so a sequence scores the same
  // alone or among other variants.
  constexpr int64_t kLoraRows = 32;
  struct Part { int64_t r0, r1; size_t factors; };
  std::vector<LoraFactors> factors;
  std::vector<std::vector<float>> scratch, bt;  // per variant
  std::vector<Part> parts;
  auto add_variant = [&](int variant, int64_t r0, int64_t r1) {
    // Without adapters on this projection, every row adds the base's frozen factors.
    scratch.emplace_back(adapted ? adapters->scratch_floats(layer, p) : 0);
    const LoraFactors f = adapted ? adapters->get(layer, p, variant, scratch.back().data()) : frozen;
    bt.emplace_back(size_t(f.r * out));
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < f.r; ++j) bt.back()[size_t(j * out + o)] = f.B[o * f.r + j];
    factors.push_back(f);
    for (int64_t c = r0; c < r1; c += kLoraRows) parts.push_back({c, std::min(r1, c + kLoraRows), factors.size() - 1});
  };
  if (adapted) {
    for (const auto& vr : rows_by_variant(batch, n)) add_variant(vr.variant, vr.begin, vr.end);
  } else {
    add_variant(0, 0, n);
  }
  parallel_for(int64_t(parts.size()), 1, threads(), [&](int64_t i0, int64_t i1) {
    std::vector<float> t;
    for (int64_t i = i0; i < i1; ++i) {
      const Part& part = parts[size_t(i)];
      const LoraFactors& f = factors[part.factors];
      const float* btp = bt[part.factors].data();
      t.resize(size_t(f.r));
      for (int64_t row = part.r0; row < part.r1; ++row) {
        const float* xr = x + row * in;
        float* yr = y + row * out;
        for (int64_t j = 0; j < f.r; ++j) t[size_t(j)] = lora_dot(xr, f.A + j * in, in) * f.scale;
        for (int64_t j = 0; j < f.r; ++j) {
          const float tj = t[size_t(j)];
          const float* b = btp + j * out;
          for (int64_t o = 0; o < out; ++o) yr[o] = yr[o] + tj * b[o];
        }
      }
    }
  });
}

void LlamaModel::mlp(float* x, int64_t n, int layer, const TokenBatch* batch, const AdapterSet* adapters,
                     std::vector<float>& xn, MlpBuffers& buf) const {
  const auto& c = w_.config;
  norm_rows(x, xn.data(), n, layer, NormSlot::Ffn, batch, adapters);
  // Every element is written by its projection before it is read.
  for (auto* v : {&buf.g, &buf.u}) v->resize(size_t(n * c.hidden_dim));
  buf.d.resize(size_t(n * c.dim));
  float *g = buf.g.data(), *u = buf.u.data(), *d = buf.d.data();
  project(xn.data(), n, layer, Proj::Gate, g, batch, adapters, c.dim, c.hidden_dim);
  project(xn.data(), n, layer, Proj::Up, u, batch, adapters, c.dim, c.hidden_dim);
  silu_mul(g, u, n * c.hidden_dim, threads());
  project(g, n, layer, Proj::Down, d, batch, adapters, c.hidden_dim, c.dim);
  add_inplace(x, d, n * c.dim, threads());
}

std::vector<float> LlamaModel::forward_hidden(const TokenBatch& batch, const AdapterSet* adapters) const {
  const auto& c = w_.config;
  const int64_t n = batch.rows();
  for (const auto& s : batch.seqs)
    ZEROTH_CHECK(s.length <= c.max_seq_len, "a sequence of {} tokens exceeds the context length {}", s.length,
                 c.max_seq_len);
  std::vector<float> x(size_t(n * c.dim)), xn(x.size());           // (n, d)
  std::vector<float> q(size_t(n * c.q_dim())), att(q.size());        // (n, q)
  std::vector<float> k(size_t(n * c.kv_dim())), v(k.size());         // (n, kv)
  std::vector<float> o(x.size());                                    // (n, d)
  MlpBuffers mlp_buf;
  embed(batch.tokens, x.data(), &batch, adapters);
  for (int l = 0; l < int(c.n_layers); ++l) {
    norm_rows(x.data(), xn.data(), n, l, NormSlot::Attention, &batch, adapters);
    project(xn.data(), n, l, Proj::Q, q.data(), &batch, adapters, c.dim, c.q_dim());
    project(xn.data(), n, l, Proj::K, k.data(), &batch, adapters, c.dim, c.kv_dim());
    project(xn.data(), n, l, Proj::V, v.data(), &batch, adapters, c.dim, c.kv_dim());
    rope(q.data(), batch.positions.data(), n, c.n_heads, rope_, c.rope_interleaved, threads());
    rope(k.data(), batch.positions.data(), n, c.n_kv_heads, rope_, c.rope_interleaved, threads());
    causal_attention(q.data(), k.data(), v.data(), att.data(), batch.seqs, c.n_heads, c.n_kv_heads, c.hd(),
                     threads());
    project(att.data(), n, l, Proj::O, o.data(), &batch, adapters, c.q_dim(), c.dim);
    add_inplace(x.data(), o.data(), n * c.dim, threads());
    mlp(x.data(), n, l, &batch, adapters, xn, mlp_buf);
  }
  norm_rows(x.data(), xn.data(), n, int(c.n_layers), NormSlot::Final, &batch, adapters);
  return xn;
}

CausalLM::ProjectionDims LlamaModel::projection_dims() const {
  const auto& c = w_.config;
  return {{{c.dim, c.q_dim()}, {c.dim, c.kv_dim()}, {c.dim, c.kv_dim()}, {c.q_dim(), c.dim},
           {c.dim, c.hidden_dim}, {c.dim, c.hidden_dim}, {c.hidden_dim, c.dim}}};
}

KVCache LlamaModel::new_cache(int64_t capacity) const {
  const auto& c = w_.config;
  KVCache cache;
  cache.capacity = capacity > 0 ? std::min(capacity, c.max_seq_len) : c.max_seq_len;
  cache.k.assign(size_t(c.n_layers), std::vector<float>(size_t(cache.capacity * c.kv_dim())));
  cache.v = cache.k;
  return cache;
}

std::vector<float> LlamaModel::decode(KVCache& cache, const std::vector<int32_t>& tokens,
                                      const AdapterSet* adapters) const {
  const auto& c = w_.config;
  const int64_t n = int64_t(tokens.size()), p0 = cache.length;
  ZEROTH_CHECK(n > 0, "decode: no tokens");
  ZEROTH_CHECK(p0 + n <= cache.capacity, "decode: position {} exceeds the cache capacity {} (context length {})",
               p0 + n, cache.capacity, c.max_seq_len);
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[size_t(i)] = int32_t(p0 + i);
  std::vector<float> x(size_t(n * c.dim)), xn(x.size()), q(size_t(n * c.q_dim())), att(q.size()), o(x.size());
  MlpBuffers mlp_buf;
  embed(tokens, x.data(), nullptr, adapters);
  for (int l = 0; l < int(c.n_layers); ++l) {
    float* kc = cache.k[size_t(l)].data();
    float* vc = cache.v[size_t(l)].data();
    norm_rows(x.data(), xn.data(), n, l, NormSlot::Attention, nullptr, adapters);
    project(xn.data(), n, l, Proj::Q, q.data(), nullptr, adapters, c.dim, c.q_dim());
    project(xn.data(), n, l, Proj::K, kc + p0 * c.kv_dim(), nullptr, adapters, c.dim, c.kv_dim());
    project(xn.data(), n, l, Proj::V, vc + p0 * c.kv_dim(), nullptr, adapters, c.dim, c.kv_dim());
    rope(q.data(), pos.data(), n, c.n_heads, rope_, c.rope_interleaved, threads());
    rope(kc + p0 * c.kv_dim(), pos.data(), n, c.n_kv_heads, rope_, c.rope_interleaved, threads());
    causal_attention_cached(q.data(), kc, vc, att.data(), p0, n, c.n_heads, c.n_kv_heads, c.hd(), threads());
    project(att.data(), n, l, Proj::O, o.data(), nullptr, adapters, c.q_dim(), c.dim);
    add_inplace(x.data(), o.data(), n * c.dim, threads());
    mlp(x.data(), n, l, nullptr, adapters, xn, mlp_buf);
  }
  cache.length = p0 + n;
  norm_rows(x.data() + (n - 1) * c.dim, xn.data(), 1, int(c.n_layers), NormSlot::Final, nullptr, adapters);
  return logits(xn, {0}, nullptr, adapters);
}


}  // namespace zeroth
