// AdamW for data-parallel first-order LoRA finetuning (mode: fo): every member
// backpropagates, the gradients are summed over members in member order (the
// same float operations on every replica), and every replica applies this
// update. θ stays bit-identical across replicas, but a run is no longer its
// base plus a ledger of one-byte records: the snapshots must carry θ and the
// optimizer's moments (state()).
//
//   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//   θ ← θ − lr·( m̂ / (√v̂ + eps) + wd·θ ),  m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
// Elementwise in a fixed order, no FMA contraction (-ffp-contract=off), so the
// result depends on nothing but its inputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "optim/trainable.h"

namespace zeroth {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  void validate() const;  // names fo.* keys
};

class AdamW {
 public:
  AdamW(const AdamWConfig& cfg, TrainableSet& theta);
  // One update with the gradient g (θ's index space) at learning rate lr.
  void step(const std::vector<float>& g, float lr);
  uint64_t steps() const { return t_; }
  // The moments as named tensors ("adamw.m.<name>", "adamw.v.<name>") and the step count, for snapshots.
  TensorList state() const;
  // Loads what state() wrote (every "adamw.*" tensor of `saved`; other names are
  // ignored), checking names and shapes against θ; `source` names the file in errors.
  void restore(const TensorList& saved, const std::string& source);

 private:
  AdamWConfig cfg_;
  TrainableSet& theta_;
  std::vector<float> m_, v_;
  uint64_t t_ = 0;
};

}  // namespace zeroth
