// LoRA adapters as a trainable set, and the perturbed views of them that the
// batched forward of a zeroth-order step runs.
//
// θ is never perturbed in place: variant v of a step sees A + σ_v·ε·z_v and
// B + σ_v·ε·z_v, built per (layer, projection) in a scratch buffer only while
// that projection runs, from the same global indices the ledger's apply uses.
#pragma once
#include <memory>
#include <vector>

#include "core/perturb.h"
#include "models/causal_lm.h"
#include "models/lora.h"
#include "optim/trainable.h"

namespace zeroth {

// LoRA A/B for every layer and target of a model, registered in a TrainableSet
// in (layer, target, A then B) order: names "layers.{l}.{proj}.lora_A|lora_B".
class LoraTrainable {
 public:
  LoraTrainable(const LoraConfig& cfg, const CausalLM& model);
  // PEFT's initialization, made reproducible: A ~ N(0, 1/(3·in)) (the variance
  // of Kaiming-uniform with a = √5) from an exact Gaussian stream keyed by
  // `seed`, B = 0, so the adapted model starts equal to the base.
  void initialize(uint64_t seed);

  LoraAdapters& adapters() { return *adapters_; }
  const LoraAdapters& adapters() const { return *adapters_; }
  TrainableSet& set() { return set_; }
  const TrainableSet& set() const { return set_; }
  // Global offsets of A and B of (layer, p) in the trainable index space.
  int64_t offset_a(int layer, Proj p) const { return off_[index(layer, p)][0]; }
  int64_t offset_b(int layer, Proj p) const { return off_[index(layer, p)][1]; }

 private:
  size_t index(int layer, Proj p) const { return size_t(layer) * kProjCount + size_t(p); }
  std::unique_ptr<LoraAdapters> adapters_;  // heap: TrainableSet points into it
  TrainableSet set_;
  std::vector<std::array<int64_t, 2>> off_;
};

// One variant of a step's batched forward: the perturbation key and the signed
// multiple of ε applied (0 = the unperturbed θ).
struct Variant {
  PerturbationKey key;
  float sigma_eps = 0;  // σ·ε
};

class PerturbedLora : public AdapterSet {
 public:
  PerturbedLora(const LoraTrainable& lora, Distribution d, std::vector<Variant> variants);
  bool has(int layer, Proj p) const override { return lora_.adapters().has(layer, p); }
  LoraFactors get(int layer, Proj p, int variant, float* scratch) const override;
  size_t scratch_floats(int layer, Proj p) const override;

 private:
  const LoraTrainable& lora_;
  Distribution dist_;
  std::vector<Variant> variants_;
};

}  // namespace zeroth
