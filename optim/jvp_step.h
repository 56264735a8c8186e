// A JVP member's work in a step: the exact projections g_k = ⟨∇L, z_k⟩ of a
// gradient member (optim/grad_step.h), computed in forward mode instead of by
// backpropagation: one pass through the frozen base carries the tangent of
// every activation along z_k (models/tasks/task_jvp.h), so g_k = dL(θ + εz_k)/dε
// at ε = 0 with no stored activations beyond the current layer. Same samples,
// keys, codec and records as grad_member_step; the records are marked
// RecordKind::Gradient, as they are the same exact projection (the ledger and
// the wire need no new kind, and apply does not care how g was computed).
//
// Cost: a pass with c directions runs (1 + c)·n rows through every base
// product (the primal once, then c tangent rows each), where a ZO member's
// central differences run 2·q·n rows; see bench/run-backward for figures.
#pragma once
#include <cstdint>
#include <vector>

#include "optim/grad_step.h"

namespace zeroth {

// The directions of a step as tangents of everything the run trains: variant
// k of this AdapterSet holds z of keys[k] over the LoRA factors (and norm
// gains when they train), from the same global indices apply() uses.
// CausalLM::jvp reads it beside the adapters of θ.
class LoraDirections : public AdapterSet {
 public:
  LoraDirections(const LoraTrainable& lora, Distribution d, std::vector<PerturbationKey> keys);
  int count() const { return int(keys_.size()); }
  bool has(int layer, Proj p) const override { return lora_.adapters().has(layer, p); }
  LoraFactors get(int layer, Proj p, int k, float* scratch) const override;  // z over A, B: built in scratch
  size_t scratch_floats(int layer, Proj p) const override;
  bool overrides_norms() const override { return lora_.options().norms; }
  const float* norm(int layer, NormSlot slot, int k, float* scratch) const override;

 private:
  const LoraTrainable& lora_;
  Distribution dist_;
  std::vector<PerturbationKey> keys_;
};

struct JvpConfig {
  // Directions carried by one pass (its activations take 1 + this many times a
  // forward's); 0: all the slots that share samples in one pass.
  int directions_per_pass = 0;
};

// The same samples and keys as zo_member_step(cfg, …) for this member; cfg.eps
// and cfg.central are unused (no finite differences), cfg.samples,
// share_samples, distribution, q, redundancy and exact_gradients are honoured.
// Without shared samples each slot's samples need their own pass.
MemberStepResult jvp_member_step(const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                 const ZoConfig& cfg, const JvpConfig& jcfg, uint64_t run_seed, uint64_t data_seed,
                                 uint64_t step, uint32_t member, uint32_t members, float codec_scale,
                                 uint32_t lane = kOwnLane);

}  // namespace zeroth
