// A gradient member's work in a step: backpropagation through the frozen base
// on its samples, then exact projections on the shared seeds,
//   g_k = ⟨∇L, z_k⟩,  z_k from (run, step, member, slot)
// with the same Philox stream, index space and samples as a ZO member's step
// (optim/zo_step.h), encoded as the same one-byte records and marked
// RecordKind::Gradient. Same ledger, same apply, same bytes on the wire: a ZO
// member's (L(θ+εz_k) − L(θ−εz_k)) / 2ε tends to this g_k as ε → 0. One
// backward pays for all q projections, so a gradient member can own many slots.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "optim/zo_step.h"

namespace zeroth {

// ∇L laid out in the trainable index space of `lora` (the order z and apply()
// use: TrainableSet offsets). Full-weight training has no gradient path (throws).
std::vector<float> flatten_gradient(const LoraTrainable& lora, const AdapterGradients& grads);

// ⟨g, z_key⟩ over the whole index space, z regenerated a chunk at a time
// (generate_z: bit-identical to what ZO members and apply() draw), summed in double.
double project_gradient(const std::vector<float>& g, const PerturbationKey& key, Distribution d);

// What an exact member computes for a group of its slots on their samples:
// L and g_k = ⟨∇L, z_k⟩ for each key of the group.
struct SlotProjections {
  double loss = 0;
  int64_t tokens = 0;
  std::vector<float> g;  // one per key
};
using ProjectSlots =
    std::function<SlotProjections(const std::vector<const Example*>& examples, const std::vector<PerturbationKey>& keys)>;

// The part grad_member_step and jvp_member_step share: the samples
// zo_member_step(cfg, …) draws for this member (one group of slots when
// samples are shared, else one group per slot), the keys apply() moves along
// (z of key_member(member, cfg.redundancy), the codec's dither of the member's
// own key), `project` per group of at most `group_limit` slots (0: no limit),
// and the records: one-byte codes (or fp32 with cfg.exact_gradients), marked
// RecordKind::Gradient. `loss` is the mean over the sample groups.
MemberStepResult exact_member_step(const Task& task, const ZoConfig& cfg, uint64_t run_seed, uint64_t data_seed,
                                   uint64_t step, uint32_t member, uint32_t members, float codec_scale, uint32_t lane,
                                   int group_limit, const ProjectSlots& project);

struct GradConfig {
  bool checkpoint = false;  // per-layer activation checkpointing (BackwardOptions)
};

// The same samples and keys as zo_member_step(cfg, …) for this member; cfg.eps
// and cfg.central are unused (no finite differences), cfg.samples,
// share_samples, distribution, q and exact_gradients are honoured. Without
// shared samples each slot's samples need their own backward.
MemberStepResult grad_member_step(const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                  const ZoConfig& cfg, const GradConfig& gcfg, uint64_t run_seed, uint64_t data_seed,
                                  uint64_t step, uint32_t member, uint32_t members, float codec_scale,
                                  uint32_t lane = kOwnLane);

}  // namespace zeroth
