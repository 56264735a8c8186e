#include "optim/lora_trainable.h"

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "optim/layer_sampling.h"

namespace zeroth {

LoraTrainable::LoraTrainable(const LoraConfig& cfg_in, const CausalLM& model, const TrainableOptions& opt)
    : opt_(opt) {
  const auto dims = model.projection_dims();
  LoraConfig cfg = cfg_in;
  if (opt.full) cfg.targets.clear();  // every matrix trains itself: no adapters on top
  for (Proj p : cfg.targets)
    ZEROTH_CHECK(dims[size_t(p)][0] > 0, "lora.targets: {} has no {} projection", model.family(), proj_name(p));
  adapters_ = std::make_unique<LoraAdapters>(cfg, model.n_layers(), dims);
  const size_t slots = size_t(model.n_layers()) * kProjCount;
  // LQ-LoRA bases carry low-rank factors: the adapters on those projections start from them.
  init_a_.resize(slots);
  init_b_.resize(slots);
  for (int l = 0; l < model.n_layers(); ++l)
    for (Proj p : cfg.targets) {
      const LoraFactors f = model.base_low_rank(l, p);
      if (f.r == 0) continue;
      ZEROTH_CHECK(f.r == cfg.rank, "lora.rank is {} but the base model carries LQ-LoRA factors of rank {} (layer {} "
                   "{}); set lora.rank={} to train them", cfg.rank, f.r, l, proj_name(p), f.r);
      const auto [in, out] = dims[size_t(p)];
      init_a_[index(l, p)].assign(f.A, f.A + f.r * in);
      init_b_[index(l, p)].assign(f.B, f.B + out * f.r);
    }
  off_.assign(slots, {-1, -1});
  woff_.assign(slots, -1);
  if (opt.full) {
    weights_.resize(slots);
    for (int l = 0; l < model.n_layers(); ++l)
      for (int pi = 0; pi < kProjCount; ++pi) {
        const Tensor& w = model.projection_weight(l, Proj(pi));
        ZEROTH_CHECK(is_float(w.dtype()), "trainable.full: layer {} {} is {}; full-weight training needs a "
                     "full-precision base (f32/f16/bf16 and no model.quantize)", l, proj_name(Proj(pi)),
                     dtype_name(w.dtype()));
        weights_[index(l, Proj(pi))] = w.to_float_vector();
      }
  }
  if (opt.full) {
    // The token embedding, and the output layer where it is not the embedding.
    hidden_ = model.hidden_size();
    vocab_ = model.vocab_size();
    const Tensor& e = model.embedding_weight();
    ZEROTH_CHECK(is_float(e.dtype()), "trainable.full: the token embedding is {}; full-weight training needs it in "
                 "full precision (f32/f16/bf16 and no model.quantize_embeddings)", dtype_name(e.dtype()));
    embedding_ = e.to_float_vector();
    if (!model.tied_output()) {
      const Tensor& o = model.output_weight();
      ZEROTH_CHECK(is_float(o.dtype()), "trainable.full: the output layer is {}; full-weight training needs it in "
                   "full precision (f32/f16/bf16 and no model.quantize_embeddings)", dtype_name(o.dtype()));
      output_ = o.to_float_vector();
    }
    eoff_ = set_.size();
    set_.add("tok_embeddings", {vocab_, hidden_}, embedding_.data());
  }
  if (opt.norms) {
    for (int l = 0; l < model.n_layers(); ++l)
      for (NormSlot s : {NormSlot::Attention, NormSlot::Ffn}) norms_.push_back(model.norm_weight(l, s).to_float_vector());
    norms_.push_back(model.norm_weight(model.n_layers(), NormSlot::Final).to_float_vector());
    noff_.assign(norms_.size(), -1);
  }
  for (int l = 0; l < model.n_layers(); ++l) {
    for (Proj p : cfg.targets) {
      const std::string base = "layers." + std::to_string(l) + "." + std::string(proj_name(p));
      auto& A = adapters_->A(l, p);
      auto& B = adapters_->B(l, p);
      off_[index(l, p)][0] = set_.size();
      set_.add(base + ".lora_A", {cfg.rank, adapters_->in_dim(p)}, A.data());
      off_[index(l, p)][1] = set_.size();
      set_.add(base + ".lora_B", {adapters_->out_dim(p), cfg.rank}, B.data());
    }
    if (opt.full)
      for (int pi = 0; pi < kProjCount; ++pi) {
        auto& w = weights_[index(l, Proj(pi))];
        woff_[index(l, Proj(pi))] = set_.size();
        set_.add("layers." + std::to_string(l) + "." + std::string(proj_name(Proj(pi))) + ".weight",
                 {dims[size_t(pi)][1], dims[size_t(pi)][0]}, w.data());
      }
    if (opt.norms)
      for (NormSlot s : {NormSlot::Attention, NormSlot::Ffn}) {
        auto& g = norms_[norm_index(l, s)];
        noff_[norm_index(l, s)] = set_.size();
        set_.add("layers." + std::to_string(l) + (s == NormSlot::Attention ? ".attn_norm" : ".ffn_norm"),
                 {int64_t(g.size())}, g.data());
      }
  }
  if (opt.norms) {
    noff_.back() = set_.size();
    set_.add("final_norm", {int64_t(norms_.back().size())}, norms_.back().data());
  }
  if (!output_.empty()) {
    ooff_ = set_.size();
    set_.add("output", {vocab_, hidden_}, output_.data());
  }
  if (opt.sparse_density > 0) {
    ZEROTH_CHECK(opt.full, "trainable.sparse_density needs trainable.full: the magnitude mask ranks full weights "
                 "(LoRA's B starts at zero, so its magnitudes rank nothing)");
    set_.set_mask(magnitude_mask(set_, opt.sparse_density));
  }
}

void LoraTrainable::initialize(uint64_t seed) {
  uint32_t tensor = 0;
  for (const auto& t : set_.tensors()) {
    if (!t.name.ends_with("lora_A") && !t.name.ends_with("lora_B")) {
      ++tensor;  // full weights and norms start from the base
      continue;
    }
    if (t.name.ends_with("lora_B")) {
      std::fill(t.data, t.data + t.n, 0.0f);
    } else {
      // The init stream is keyed apart from every step's perturbations (step = ~0).
      const PerturbationKey key{seed, 0xffffffffu, 0xffffffffu, tensor};
      generate_z(key, Distribution::Gaussian, 0, t.n, t.data);
      const float sd = float(1.0 / std::sqrt(3.0 * double(t.shape.back())));
      for (int64_t i = 0; i < t.n; ++i) t.data[i] = t.data[i] * sd;
    }
    ++tensor;
  }
  // LQ-LoRA: scale·B·A = L1·L2 with B = L1/√scale, A = L2/√scale.
  const auto& cfg = adapters_->config();
  const float inv = float(1.0 / std::sqrt(double(cfg.alpha) / double(cfg.rank)));
  for (int l = 0; l < adapters_->n_layers(); ++l)
    for (Proj p : cfg.targets) {
      const auto& a0 = init_a_[index(l, p)];
      if (a0.empty()) continue;
      const auto& b0 = init_b_[index(l, p)];
      auto& A = adapters_->A(l, p);
      auto& B = adapters_->B(l, p);
      for (size_t i = 0; i < A.size(); ++i) A[i] = a0[i] * inv;
      for (size_t i = 0; i < B.size(); ++i) B[i] = b0[i] * inv;
    }
}

PerturbedLora::PerturbedLora(const LoraTrainable& lora, Distribution d, std::vector<Variant> variants, int lisa_layers,
                             Directions directions)
    : lora_(lora), dist_(d), variants_(std::move(variants)), directions_(directions) {
  directions_.validate();
  if (lisa_layers <= 0) return;
  const int layers = layer_count(lora_.set());
  for (const Variant& v : variants_) active_.push_back(sampled_layers(v.key.run_seed, v.key.step, layers, lisa_layers));
}

float PerturbedLora::sigma_eps(int variant, int layer) const {
  ZEROTH_CHECK(variant >= 0 && size_t(variant) < variants_.size(), "variant {} of {}", variant, variants_.size());
  const float s = variants_[size_t(variant)].sigma_eps;
  if (active_.empty() || layer < 0) return s;
  const auto& act = active_[size_t(variant)];
  return size_t(layer) < act.size() && !act[size_t(layer)] ? 0.0f : s;
}

size_t PerturbedLora::scratch_floats(int layer, Proj p) const {
  const auto& ad = lora_.adapters();
  return ad.A(layer, p).size() + ad.B(layer, p).size();
}

LoraFactors PerturbedLora::get(int layer, Proj p, int variant, float* scratch) const {
  LoraFactors f = lora_.adapters().get(layer, p, 0, nullptr);
  ZEROTH_CHECK(variant >= 0 && size_t(variant) < variants_.size(), "variant {} of {}", variant, variants_.size());
  const Variant& v = variants_[size_t(variant)];
  const float se = sigma_eps(variant, layer);
  if (se == 0.0f) return f;
  const auto& ad = lora_.adapters();
  const int64_t na = int64_t(ad.A(layer, p).size()), nb = int64_t(ad.B(layer, p).size());
  float* a = scratch;
  float* b = scratch + na;
  // z over exactly the global indices apply() will use for these tensors.
  perturb(f.A, se, v.key, lora_.offset_a(layer, p), na, a);
  perturb(f.B, se, v.key, lora_.offset_b(layer, p), nb, b);
  f.A = a;
  f.B = b;
  return f;
}

void PerturbedLora::perturb(const float* theta, float se, const PerturbationKey& key, int64_t off, int64_t n,
                            float* out) const {
  perturbation_z(lora_.set(), key, dist_, directions_, off, off + n, out);
  const std::span<const float> curvature = lora_.set().curvature();
  if (!curvature.empty()) {  // HiZOO: u = z/√D
    const float* d = curvature.data() + off;
    for (int64_t i = 0; i < n; ++i) out[i] = out[i] / std::sqrt(d[i]);
  }
  const std::vector<uint8_t>& mask = lora_.set().mask();
  if (mask.empty()) {
    for (int64_t i = 0; i < n; ++i) out[i] = theta[i] + se * out[i];
    return;
  }
  const uint8_t* m = mask.data() + off;
  for (int64_t i = 0; i < n; ++i) out[i] = m[i] ? theta[i] + se * out[i] : theta[i];
}

bool PerturbedLora::perturbed_factors(int layer, Proj p, int variant, PerturbedFactors& out) const {
  ZEROTH_CHECK(variant >= 0 && size_t(variant) < variants_.size(), "variant {} of {}", variant, variants_.size());
  // The device kernel knows no mask or curvature: the host forms those factors (get).
  if (lora_.set().masked() || !lora_.set().curvature().empty() || !directions_.plain()) return false;
  const Variant& v = variants_[size_t(variant)];
  out.theta = lora_.adapters().get(layer, p, 0, nullptr);
  out.offset_a = lora_.offset_a(layer, p);
  out.offset_b = lora_.offset_b(layer, p);
  out.key = v.key;
  out.dist = dist_;
  out.sigma_eps = sigma_eps(variant, layer);
  return true;
}

}  // namespace zeroth

namespace zeroth {

const float* PerturbedLora::norm(int layer, NormSlot slot, int variant, float* scratch) const {
  const float* g = lora_.norm(layer, slot);
  const Variant& v = variants_[size_t(variant)];
  const float se = sigma_eps(variant, slot == NormSlot::Final ? -1 : layer);
  if (se == 0.0f) return g;
  const int64_t n = int64_t(lora_.norm_size()), off = lora_.offset_norm(layer, slot);
  perturb(g, se, v.key, off, n, scratch);
  return scratch;
}

const float* PerturbedLora::embedding_row(int32_t token, int variant, float* scratch) const {
  const int64_t d = lora_.hidden_size();
  ZEROTH_CHECK(token >= 0 && token < lora_.vocab_size(), "token id {} outside the vocabulary of {}", token,
               lora_.vocab_size());
  ZEROTH_CHECK(variant >= 0 && size_t(variant) < variants_.size(), "variant {} of {}", variant, variants_.size());
  const float* e = lora_.embedding() + int64_t(token) * d;
  const Variant& v = variants_[size_t(variant)];
  if (v.sigma_eps == 0.0f) return e;
  // z over this row's global indices only: the same values generate_z over the
  // whole tensor gives there (z is random-access), so the same as apply() uses.
  const int64_t off = lora_.offset_embedding() + int64_t(token) * d;
  perturb(e, v.sigma_eps, v.key, off, d, scratch);
  return scratch;
}

const float* PerturbedLora::output(int variant, std::vector<float>& scratch) const {
  ZEROTH_CHECK(variant >= 0 && size_t(variant) < variants_.size(), "variant {} of {}", variant, variants_.size());
  const float* w = lora_.output();
  const Variant& v = variants_[size_t(variant)];
  if (v.sigma_eps == 0.0f) return w;
  const int64_t n = lora_.vocab_size() * lora_.hidden_size(), off = lora_.offset_output();
  scratch.resize(size_t(n));
  perturb(w, v.sigma_eps, v.key, off, n, scratch.data());
  return scratch.data();
}

const float* PerturbedLora::weight(int layer, Proj p, int variant, float* scratch) const {
  const float* w = lora_.weight(layer, p);
  const Variant& v = variants_[size_t(variant)];
  const float se = sigma_eps(variant, layer);
  if (se == 0.0f) return w;
  const int64_t n = int64_t(lora_.weight_size(layer, p)), off = lora_.offset_weight(layer, p);
  perturb(w, se, v.key, off, n, scratch);
  return scratch;
}

}  // namespace zeroth
