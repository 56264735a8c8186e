#include "optim/lora_trainable.h"

#include <cmath>

#include "core/error.h"

namespace zeroth {

LoraTrainable::LoraTrainable(const LoraConfig& cfg, const CausalLM& model) {
  const auto dims = model.projection_dims();
  for (Proj p : cfg.targets)
    ZEROTH_CHECK(dims[size_t(p)][0] > 0, "lora.targets: {} has no {} projection", model.family(), proj_name(p));
  adapters_ = std::make_unique<LoraAdapters>(cfg, model.n_layers(), dims);
  off_.assign(size_t(model.n_layers()) * kProjCount, {-1, -1});
  for (int l = 0; l < model.n_layers(); ++l)
    for (Proj p : cfg.targets) {
      const std::string base = "layers." + std::to_string(l) + "." + std::string(proj_name(p));
      auto& A = adapters_->A(l, p);
      auto& B = adapters_->B(l, p);
      off_[index(l, p)][0] = set_.size();
      set_.add(base + ".lora_A", {cfg.rank, adapters_->in_dim(p)}, A.data());
      off_[index(l, p)][1] = set_.size();
      set_.add(base + ".lora_B", {adapters_->out_dim(p), cfg.rank}, B.data());
    }
}

void LoraTrainable::initialize(uint64_t seed) {
  uint32_t tensor = 0;
  for (const auto& t : set_.tensors()) {
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
}

PerturbedLora::PerturbedLora(const LoraTrainable& lora, Distribution d, std::vector<Variant> variants)
    : lora_(lora), dist_(d), variants_(std::move(variants)) {}

size_t PerturbedLora::scratch_floats(int layer, Proj p) const {
  const auto& ad = lora_.adapters();
  return ad.A(layer, p).size() + ad.B(layer, p).size();
}

LoraFactors PerturbedLora::get(int layer, Proj p, int variant, float* scratch) const {
  LoraFactors f = lora_.adapters().get(layer, p, 0, nullptr);
  ZEROTH_CHECK(variant >= 0 && size_t(variant) < variants_.size(), "variant {} of {}", variant, variants_.size());
  const Variant& v = variants_[size_t(variant)];
  if (v.sigma_eps == 0.0f) return f;
  const auto& ad = lora_.adapters();
  const int64_t na = int64_t(ad.A(layer, p).size()), nb = int64_t(ad.B(layer, p).size());
  float* a = scratch;
  float* b = scratch + na;
  // z over exactly the global indices apply() will use for these tensors.
  generate_z(v.key, dist_, lora_.offset_a(layer, p), lora_.offset_a(layer, p) + na, a);
  generate_z(v.key, dist_, lora_.offset_b(layer, p), lora_.offset_b(layer, p) + nb, b);
  for (int64_t i = 0; i < na; ++i) a[i] = f.A[i] + v.sigma_eps * a[i];
  for (int64_t i = 0; i < nb; ++i) b[i] = f.B[i] + v.sigma_eps * b[i];
  f.A = a;
  f.B = b;
  return f;
}

}  // namespace zeroth
