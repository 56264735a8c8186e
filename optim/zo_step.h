// One member's work in a zeroth-order step (SPSA / MeZO):
//   for each of its q slots k: z_k from (run, step, member, slot),
//   L±_k = loss at θ ± ε·z_k on the slot's samples (all 2q variants in ONE
//   batched forward through the frozen base), g_k = (L+_k − L−_k) / 2ε
//   (central) or (L+_k − L_k) / ε (forward differences), encoded as one byte.
#pragma once
#include <cstdint>
#include <vector>

#include "models/tasks/task.h"
#include "optim/codec.h"
#include "optim/ledger.h"
#include "optim/lora_trainable.h"
#include "optim/directions.h"
#include "optim/update.h"

namespace zeroth {

struct ZoConfig {
  int q = 1;                  // perturbations (slots) per member per step
  float eps = 1e-3f;          // ε (at step 0 with an ε schedule)
  // ε schedule (eps_at): with eps_final > 0, ε moves geometrically from eps to
  // eps_final over eps_steps steps and stays there; ≤ 0: ε is constant.
  float eps_final = 0.0f;
  int64_t eps_steps = 0;
  bool central = true;        // central (2 evaluations per slot) or forward differences
  int samples = 16;           // examples per perturbation: 1 = "one seed per sample"
  bool share_samples = true;  // all slots of a member score the same examples (MeZO's minibatch)
  Distribution distribution = Distribution::Rademacher;
  bool exact_gradients = false;  // send fp32 projected gradients instead of one byte (for comparison runs)
  // Members per direction: members m of one group (m / redundancy) perturb along
  // the same z (keyed by the group's first member, key_member()) on their own
  // samples, so the committing node can take a median per direction
  // (robust.rule median). 1: every member has its own directions.
  uint32_t redundancy = 1;
  // LISA (optim/layer_sampling.h): > 0, each step perturbs and updates only this
  // many layers, drawn from (run seed, step); 0 = every layer.
  int lisa_layers = 0;
  // HiZOO (optimizer.rule hizoo; needs central differences on shared samples):
  // θ itself is evaluated too (one more variant), and each slot also sends its
  // curvature h = |L+ + L− − 2·L0| / 2ε² as a RecordKind::Curvature record. The
  // perturbations run along z/√D where θ lends the optimizer's D (PerturbedLora).
  bool curvature = false;
  // LOZO (zo.lozo_rank, zo.lozo_period): matrices perturbed along rank-r
  // z = U·Vᵀ/√r; zo.orthogonal_slots: the slots along Walsh–Hadamard-signed
  // copies of slot 0's z (optim/directions.h).
  Directions directions;
  // Addax's split (roles.short_tokens L > 0): gradient and JVP members draw
  // their samples from the train examples of at most L tokens, zeroth-order
  // members from the longer ones (draw_pool). 0: every member draws from all.
  int64_t short_tokens = 0;
  void validate() const;
  // The step's ε: eps·(eps_final/eps)^min(1, step/eps_steps) in double, rounded
  // to float once; every member evaluates it the same way from the step alone.
  float eps_at(uint64_t step) const;
};

// Example indices (into the train split) of the draw-th group of `count`
// examples: a deterministic function of the data seed, so any replica or
// auditor can recompute them. Draws walk one permutation of the data per pass
// (epoch), in order; draw = (step · members + member) · groups + group.
std::vector<int64_t> sample_indices(int64_t n_train, int64_t count, uint64_t data_seed, uint64_t draw);

// The train examples a member draws from: all of them (empty result: the
// identity), or with cfg.short_tokens L > 0 those of at most L tokens for a
// member that backpropagates or runs forward-mode (`exact` true) and those
// longer than L for a zeroth-order member, in index order. Throws, naming
// roles.short_tokens, where that pool is empty.
std::vector<int64_t> draw_pool(const Task& task, const ZoConfig& cfg, bool exact);
// sample_indices over `pool` (indices into it mapped back to the train split);
// an empty pool stands for the whole split of n_train examples.
std::vector<int64_t> sample_pool(const std::vector<int64_t>& pool, int64_t n_train, int64_t count, uint64_t data_seed,
                                 uint64_t draw);

struct MemberStepResult {
  std::vector<Record> records;   // one per slot whose gradient was finite (and its curvature record, if any)
  std::vector<float> gradients;  // raw projected gradients per slot (NaN if dropped)
  double loss = 0;               // mean over variants: an estimate of L(θ) on these samples
  int64_t tokens = 0;            // rows run through the model
  int64_t clipped = 0, dropped = 0;
};

// The first sample draw of a member on draw lane `lane` (kOwnLane: its own,
// lane = member) of `members` at `step`: its slots score draws first, first + 1,
// … (one per slot without shared samples, else one for all). Throws where the
// lane is outside the step's lanes. Every member step (ZO, gradient, JVP) draws here.
uint64_t first_sample_draw(const ZoConfig& cfg, uint64_t step, uint32_t member, uint32_t members, uint32_t lane);

// Appends slot `slot`'s record of g to `out` (and, unless it is a curvature
// record, g to out.gradients): the fp32 value in exact runs, else its byte: the
// codec's, its rounding dither keyed by `dither_key`, or for RecordKind::Curvature
// encode_curvature's fixed grid. A non-finite g is counted as dropped and sends
// no record, a clipped one is counted.
void add_slot_record(MemberStepResult& out, float g, uint32_t member, uint32_t slot, RecordKind kind,
                     bool exact, float codec_scale, const PerturbationKey& dither_key);

// `member` keys the perturbations; the samples come from draw lane `lane` of
// `members` lanes (by default the member's own: lane = member). The elastic
// coordinator hands out lanes by position, so samples follow the step's
// membership while keys follow the member.
constexpr uint32_t kOwnLane = 0xffffffffu;
MemberStepResult zo_member_step(const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                const ZoConfig& cfg, uint64_t run_seed, uint64_t data_seed, uint64_t step,
                                uint32_t member, uint32_t members, float codec_scale, uint32_t lane = kOwnLane);

}  // namespace zeroth
