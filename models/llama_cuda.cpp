// The LLaMA forward on CUDA (models/llama_cuda.h): the structure of
// LlamaModel::forward_hidden (models/llama.cpp) with device buffers, the
// kernels of core/cuda_ops.h and the quantized GEMMs of core/cuda_matmul.h.
// Host code only: every kernel is launched through core's CUDA API, so this file
// compiles in a build without CUDA too (construction then throws).
#include "models/llama_cuda.h"

#include <cstdint>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <span>

#include "core/backend.h"
#include "core/cuda_ops.h"
#include "core/device_array.h"
#include "core/error.h"
#include "core/perturb.h"
#include "core/quant/quant.h"

namespace zeroth {
namespace {

template <typename T>
void reserve(DeviceArray<T>& a, size_t n) {
  if (a.size() < n) a = DeviceArray<T>(n);
}

// Logit rows per output-layer chunk: at most 256 MiB of f32 logits at a time.
int64_t output_chunk_rows(int64_t vocab) { return std::max<int64_t>(1, (int64_t(256) << 20) / (4 * vocab)); }

}  // namespace

struct LlamaCuda::DeviceState {
  struct Layer {
    Tensor attn_norm, ffn_norm;              // (dim) f32
    std::array<Tensor, kProjCount> proj;     // packed as on the host
    std::array<DeviceArray<float>, kProjCount> low_a, low_b;  // frozen LQ-LoRA factors, or empty
    std::array<int64_t, kProjCount> low_r{};
  };
  std::vector<Layer> layers;
  Tensor final_norm, output;
  std::unique_ptr<RopeTableCuda> rope;
  std::unique_ptr<CudaMatmul> mm;
  std::string device_class;

  // Scratch, grown on demand and kept (calls are serialized by mu_).
  DeviceArray<float> x, xn, q, k, v, att, o, g, u;  // activations of one forward
  DeviceArray<float> t;        // (rows, r) low-rank products
  DeviceArray<float> theta;    // θ's factors of one projection: A then B
  DeviceArray<float> factors;  // one variant's factors: A then B
  DeviceArray<float> gains;    // one variant's norm gains
  DeviceArray<float> sel, logits, lp;  // output layer: chosen hidden rows, their logits, log-probs
  std::vector<float> host;     // host staging
};

LlamaCuda::LlamaCuda(const LlamaModel& host, LlamaCudaOptions options)
    : CausalLM(host.threads()), host_(host), options_(options) {
  ZEROTH_CHECK(cuda_available(), "a CUDA member needs a usable GPU: {}", cuda_describe());
  device_ = cuda_current_device();
  const LlamaWeights& w = host.weights();
  const LlamaConfig& c = w.config;
  auto upload = [&](const Tensor& t, const std::string& name) {
    ZEROTH_CHECK(cuda_can_dequantize(t.dtype()),
                 "{}: no CUDA decoder for {} weights ({}); run this model on CPU members, or quantize it to one "
                 "of q4_0, q8_0, q4_k, nf4, nf3_b64, i8_b32, i4_b32, bf16",
                 name, dtype_name(t.dtype()), t.describe());
    Tensor d = t.to(Device::CUDA);
    weight_bytes_ += d.nbytes();
    return d;
  };
  auto upload_f32 = [&](const Tensor& t) {
    Tensor d = t.contiguous().to(Device::CUDA);
    weight_bytes_ += d.nbytes();
    return d;
  };
  dev_ = std::make_unique<DeviceState>();
  dev_->mm = std::make_unique<CudaMatmul>(CudaMatmulOptions{options.precision, options.tile_bytes});
  dev_->device_class = cuda_backend_class();
  dev_->layers.resize(size_t(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LlamaLayer& L = w.layers[size_t(l)];
    auto& D = dev_->layers[size_t(l)];
    D.attn_norm = upload_f32(L.attn_norm);
    D.ffn_norm = upload_f32(L.ffn_norm);
    for (int p = 0; p < kProjCount; ++p) {
      D.proj[size_t(p)] = upload(L.proj(Proj(p)), fmt::format("layers.{}.{}", l, proj_name(Proj(p))));
      const Tensor& a = L.low_rank_a[size_t(p)];
      if (!a.defined()) continue;
      const Tensor& b = L.low_rank_b[size_t(p)];
      D.low_r[size_t(p)] = a.dim(0);
      D.low_a[size_t(p)] = DeviceArray<float>(std::span<const float>(a.data<float>(), size_t(a.numel())));
      D.low_b[size_t(p)] = DeviceArray<float>(std::span<const float>(b.data<float>(), size_t(b.numel())));
      weight_bytes_ += D.low_a[size_t(p)].bytes() + D.low_b[size_t(p)].bytes();
    }
  }
  dev_->final_norm = upload_f32(w.final_norm);
  // The output layer (the token embedding itself when tied); the lookup of
  // input embeddings is done on the host (a row per token), so only this copy
  // of the matrix lives on the device.
  dev_->output = upload(w.output, "output");
  dev_->rope = std::make_unique<RopeTableCuda>(make_rope_table(c.hd(), c.max_seq_len, c.rope_theta, c.rope_scaling));
  cuda_synchronize();
}

LlamaCuda::~LlamaCuda() {
  // The buffers and the cuBLAS handle belong to device_, whatever this thread's current device is.
  try {
    if (dev_) cuda_set_device(device_);
  } catch (...) {
  }
}

std::string LlamaCuda::describe() const {
  return fmt::format("cuda ({}, {} GEMMs): {:.2f} GiB of weights on the device", dev_->device_class,
                     gemm_precision_name(options_.precision), double(weight_bytes_) / double(1 << 30));
}

namespace {
void check_supported(const AdapterSet* adapters, const char* who) {
  if (!adapters) return;
  ZEROTH_CHECK(!adapters->overrides_weights() && !adapters->overrides_embeddings() && !adapters->overrides_output(),
               "{}: full-weight training (trainable.full) is not on CUDA members: run it on CPU members "
               "(model.device: cpu)",
               who);
}
}  // namespace

void LlamaCuda::norm_rows(const float* x, float* out, int64_t n, int layer, NormSlot slot, const TokenBatch& batch,
                          const AdapterSet* adapters) const {
  const LlamaConfig& c = host_.config();
  DeviceState& D = *dev_;
  const Tensor& base_t = slot == NormSlot::Final            ? D.final_norm
                         : slot == NormSlot::Attention      ? D.layers[size_t(layer)].attn_norm
                                                            : D.layers[size_t(layer)].ffn_norm;
  const float* base = base_t.data<float>();
  if (!adapters || !adapters->overrides_norms()) {
    rmsnorm_cuda(x, base, out, n, c.dim, c.norm_eps);
    return;
  }
  // Trained norms: each variant's gains, built on the host (dim floats) and
  // copied over; the copy waits for the kernels before it on the stream.
  D.host.resize(size_t(c.dim));
  reserve(D.gains, size_t(c.dim));
  for (const auto& vr : batch.variant_rows()) {
    if (vr.end == vr.begin) continue;
    const float* g = adapters->norm(layer, slot, vr.variant, D.host.data());
    if (g) D.gains.upload(std::span<const float>(g, size_t(c.dim)));
    rmsnorm_cuda(x + vr.begin * c.dim, g ? D.gains.data() : base, out + vr.begin * c.dim, vr.end - vr.begin, c.dim,
                 c.norm_eps);
  }
}

// y (n, out) = x (n, in) · Wᵀ, plus each variant's low-rank adapter on its rows.
void LlamaCuda::project(const float* x, int64_t n, int layer, Proj p, float* y, const TokenBatch& batch,
                        const AdapterSet* adapters, int64_t in, int64_t out) const {
  DeviceState& D = *dev_;
  const auto& L = D.layers[size_t(layer)];
  CudaMatmul& mm = *D.mm;
  mm.matmul(x, n, in, L.proj[size_t(p)], y, out);
  // y[rows] += scale · (x[rows] · Aᵀ) · Bᵀ with A (r, in), B (out, r) on the device.
  auto low_rank = [&](int64_t r0, int64_t rows, const float* A, const float* B, int64_t r, float scale) {
    if (rows == 0 || r == 0) return;
    reserve(D.t, size_t(n * r));
    mm.gemm_f32(x + r0 * in, rows, in, in, A, r, in, D.t.data(), r, scale, 0.0f);
    mm.gemm_f32(D.t.data(), rows, r, r, B, out, r, y + r0 * out, out, 1.0f, 1.0f);
  };
  if (!adapters || !adapters->has(layer, p)) {
    // The base's frozen LQ-LoRA part, unless trainable adapters took it over.
    if (L.low_r[size_t(p)] > 0)
      low_rank(0, n, L.low_a[size_t(p)].data(), L.low_b[size_t(p)].data(), L.low_r[size_t(p)], 1.0f);
    return;
  }
  const float* uploaded = nullptr;  // the host θ whose factors D.theta holds
  for (const auto& vr : batch.variant_rows()) {
    const int64_t rows = vr.end - vr.begin;
    if (rows == 0) continue;
    PerturbedFactors pf;
    if (adapters->perturbed_factors(layer, p, vr.variant, pf)) {
      // θ + σε·z formed here: θ's factors copied once per projection, z never stored.
      const int64_t r = pf.theta.r, na = r * in, nb = out * r;
      if (uploaded != pf.theta.A) {
        reserve(D.theta, size_t(na + nb));
        cuda_copy_h2d(D.theta.data(), pf.theta.A, size_t(na) * sizeof(float));
        cuda_copy_h2d(D.theta.data() + na, pf.theta.B, size_t(nb) * sizeof(float));
        uploaded = pf.theta.A;
      }
      const float* A = D.theta.data();
      const float* B = D.theta.data() + na;
      if (pf.sigma_eps != 0.0f) {
        reserve(D.factors, size_t(na + nb));
        perturbed_copy_cuda(pf.key, pf.dist, pf.offset_a, na, D.theta.data(), pf.sigma_eps, D.factors.data());
        perturbed_copy_cuda(pf.key, pf.dist, pf.offset_b, nb, D.theta.data() + na, pf.sigma_eps,
                            D.factors.data() + na);
        A = D.factors.data();
        B = D.factors.data() + na;
      }
      low_rank(vr.begin, rows, A, B, r, pf.theta.scale);
    } else {
      // Any other adapter set: its factors built on the host, then copied.
      D.host.resize(adapters->scratch_floats(layer, p));
      const LoraFactors f = adapters->get(layer, p, vr.variant, D.host.data());
      const int64_t na = f.r * in, nb = out * f.r;
      reserve(D.factors, size_t(na + nb));
      cuda_copy_h2d(D.factors.data(), f.A, size_t(na) * sizeof(float));
      cuda_copy_h2d(D.factors.data() + na, f.B, size_t(nb) * sizeof(float));
      uploaded = nullptr;
      low_rank(vr.begin, rows, D.factors.data(), D.factors.data() + na, f.r, f.scale);
    }
  }
}

std::vector<float> LlamaCuda::forward_hidden(const TokenBatch& batch, const AdapterSet* adapters) const {
  check_supported(adapters, "LlamaCuda::forward_hidden");
  const LlamaConfig& c = host_.config();
  const int64_t n = batch.rows(), d = c.dim;
  ZEROTH_CHECK(batch.positions.size() == batch.tokens.size(), "forward: {} positions for {} tokens",
               batch.positions.size(), batch.tokens.size());
  for (const auto& s : batch.seqs)
    ZEROTH_CHECK(s.length <= c.max_seq_len, "a sequence of {} tokens exceeds the context length {}", s.length,
                 c.max_seq_len);
  for (int32_t t : batch.tokens)
    ZEROTH_CHECK(t >= 0 && t < c.vocab_size, "token id {} outside the vocabulary of {}", t, c.vocab_size);
  if (n == 0) return {};
  std::lock_guard lock(mu_);
  cuda_set_device(device_);
  DeviceState& D = *dev_;
  // Token embeddings, looked up on the host (one row per token) and copied over.
  const Tensor& emb = host_.embedding_weight();
  D.host.resize(size_t(n * d));
  for (int64_t i = 0; i < n; ++i)
    dequantize_row(emb.dtype(), emb.row(batch.tokens[size_t(i)]), D.host.data() + i * d, d);
  for (auto* a : {&D.x, &D.xn, &D.o}) reserve(*a, size_t(n * d));
  for (auto* a : {&D.q, &D.att}) reserve(*a, size_t(n * c.q_dim()));
  for (auto* a : {&D.k, &D.v}) reserve(*a, size_t(n * c.kv_dim()));
  for (auto* a : {&D.g, &D.u}) reserve(*a, size_t(n * c.hidden_dim));
  cuda_copy_h2d(D.x.data(), D.host.data(), size_t(n * d) * sizeof(float));
  // Attention writes only rows inside a sequence; the CPU's buffer starts at zero, so does this one.
  cuda_memset_zero(D.att.data(), size_t(n * c.q_dim()) * sizeof(float));
  float *x = D.x.data(), *xn = D.xn.data(), *q = D.q.data(), *k = D.k.data(), *v = D.v.data();
  float *att = D.att.data(), *o = D.o.data(), *g = D.g.data(), *u = D.u.data();
  // The batch's positions and sequence layout, checked and copied once for every layer.
  check_rope_positions(batch.positions, *D.rope);
  const DeviceArray<int32_t> pos{std::span<const int32_t>(batch.positions)};
  const AttentionRowsCuda rows(batch.seqs, n);
  for (int l = 0; l < int(c.n_layers); ++l) {
    norm_rows(x, xn, n, l, NormSlot::Attention, batch, adapters);
    project(xn, n, l, Proj::Q, q, batch, adapters, d, c.q_dim());
    project(xn, n, l, Proj::K, k, batch, adapters, d, c.kv_dim());
    project(xn, n, l, Proj::V, v, batch, adapters, d, c.kv_dim());
    rope_cuda(q, pos.data(), n, c.n_heads, *D.rope, c.rope_interleaved);
    rope_cuda(k, pos.data(), n, c.n_kv_heads, *D.rope, c.rope_interleaved);
    causal_attention_cuda(q, k, v, att, rows, c.n_heads, c.n_kv_heads, c.hd());
    project(att, n, l, Proj::O, o, batch, adapters, c.q_dim(), d);
    add_inplace_cuda(x, o, n * d);
    norm_rows(x, xn, n, l, NormSlot::Ffn, batch, adapters);
    project(xn, n, l, Proj::Gate, g, batch, adapters, d, c.hidden_dim);
    project(xn, n, l, Proj::Up, u, batch, adapters, d, c.hidden_dim);
    silu_mul_cuda(g, u, n * c.hidden_dim);
    project(g, n, l, Proj::Down, o, batch, adapters, c.hidden_dim, d);
    add_inplace_cuda(x, o, n * d);
  }
  norm_rows(x, xn, n, int(c.n_layers), NormSlot::Final, batch, adapters);
  std::vector<float> hidden(size_t(n * d));
  cuda_copy_d2h(hidden.data(), xn, hidden.size() * sizeof(float));  // waits for the forward
  return hidden;
}

template <typename Fn>
void LlamaCuda::output_chunks(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                              const AdapterSet* adapters, const char* who, Fn&& fn) const {
  ZEROTH_CHECK(!(adapters && adapters->overrides_output()),
               "{}: training the output layer (trainable.full) is not on CUDA members: run it on CPU members", who);
  const int64_t d = hidden_size(), V = vocab_size();
  for (int64_t r : rows)
    ZEROTH_CHECK(r >= 0 && (r + 1) * d <= int64_t(hidden.size()), "logits: row {} outside the hidden states", r);
  if (rows.empty()) return;
  std::lock_guard lock(mu_);
  cuda_set_device(device_);
  DeviceState& D = *dev_;
  const int64_t chunk = std::min<int64_t>(output_chunk_rows(V), int64_t(rows.size()));
  reserve(D.sel, size_t(chunk * d));
  reserve(D.logits, size_t(chunk * V));
  reserve(D.lp, size_t(chunk));
  D.host.resize(size_t(chunk * d));
  for (int64_t first = 0; first < int64_t(rows.size()); first += chunk) {
    const int64_t m = std::min<int64_t>(chunk, int64_t(rows.size()) - first);
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(hidden.data() + rows[size_t(first + i)] * d, d, D.host.data() + i * d);
    cuda_copy_h2d(D.sel.data(), D.host.data(), size_t(m * d) * sizeof(float));
    D.mm->matmul(D.sel.data(), m, d, D.output, D.logits.data(), V);
    fn(first, m, D.logits.data(), D.lp.data());
  }
}

std::vector<float> LlamaCuda::token_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                             const std::vector<int32_t>& targets, const TokenBatch*,
                                             const AdapterSet* adapters) const {
  ZEROTH_CHECK(rows.size() == targets.size(), "token_logprobs: {} rows but {} targets", rows.size(), targets.size());
  const int64_t V = vocab_size();
  for (int32_t t : targets) ZEROTH_CHECK(t >= 0 && t < V, "target token {} outside the vocabulary of {}", t, V);
  std::vector<float> out(rows.size());
  output_chunks(hidden, rows, adapters, "token_logprobs", [&](int64_t first, int64_t m, const float* lg, float* lp) {
    token_logprobs_cuda(lg, std::span<const int32_t>(targets.data() + first, size_t(m)), V, lp);
    cuda_copy_d2h(out.data() + first, lp, size_t(m) * sizeof(float));
  });
  return out;
}

std::vector<float> LlamaCuda::column_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                              const std::vector<int32_t>& columns, const TokenBatch*,
                                              const AdapterSet* adapters) const {
  const int64_t V = vocab_size();
  for (int32_t c : columns) ZEROTH_CHECK(c >= 0 && c < V, "column {} outside the vocabulary of {}", c, V);
  const size_t C = columns.size();
  std::vector<float> out(rows.size() * C), part;
  std::vector<int32_t> target;
  output_chunks(hidden, rows, adapters, "column_logprobs", [&](int64_t first, int64_t m, const float* lg, float* lp) {
    part.resize(size_t(m));
    // Column j of every row is that row's "target" j: one log-softmax pass per column.
    for (size_t j = 0; j < C; ++j) {
      target.assign(size_t(m), columns[j]);
      token_logprobs_cuda(lg, target, V, lp);
      cuda_copy_d2h(part.data(), lp, size_t(m) * sizeof(float));
      for (int64_t i = 0; i < m; ++i) out[size_t(first + i) * C + j] = part[size_t(i)];
    }
  });
  return out;
}

double LlamaCuda::backward(const TokenBatch&, const AdapterSet&, const HiddenLoss&, AdapterGradients&,
                           const BackwardOptions&) const {
  fail("the CUDA backend has no backward pass yet: gradient members (roles.grad, mode fo) run on CPU members "
       "(model.device: cpu)");
}

double LlamaCuda::jvp(const TokenBatch&, const AdapterSet&, const AdapterSet&, int, const HiddenLossJvp&,
                      std::vector<double>&) const {
  fail("the CUDA backend has no forward-mode (JVP) pass yet: JVP members (roles.jvp) run on CPU members "
       "(model.device: cpu)");
}

}  // namespace zeroth
