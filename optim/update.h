// Applying committed ledger entries to θ: the update rules of zeroth-order
// optimization. Every rule's state is a deterministic function of the ledger:
// the same entries give the same bits on every replica, thread count and backend.
//
// An entry's records become decoded projected gradients g_k; with N = the
// number of records and z_k the perturbation of (run, step, member, slot), the
// step's gradient estimate is ĝ = Σ_k g_k z_k / N (SPSA), and
//   sgd:      θ ← θ·(1 − lr·wd) − lr·ĝ                                   (MeZO)
//   momentum: m ← β·m + ĝ;  θ ← θ·(1 − lr·wd) − lr·m
//   sign:     θ ← θ·(1 − lr·wd) − lr·sign(ĝ)
//   adam:     ZO-Adam: m ← β1·m + (1−β1)·ĝ, v ← β2·v + (1−β2)·ĝ², bias-corrected
//             θ ← θ·(1 − lr·wd) − lr·m̂/(√v̂ + eps)       (2 buffers the size of θ)
//   adamezo:  AdaMeZO's finite horizon: m and v recomputed at every step from
//             the last H non-empty entries (the same recurrence from zero, so
//             with H ≥ the steps so far it is adam bit for bit); no buffer the
//             size of θ, H passes over θ per step
//   muon:     ZO-Muon: per matrix, ĝ's block (rows × cols) is orthogonalized by
//             Newton–Schulz (optim/newton_schulz.h) and scaled by √max(1, rows/cols);
//             vectors (norms) take ĝ itself
//   hizoo:    HiZOO: a diagonal curvature estimate D (|θ| floats, D_0 = 1) shapes
//             the perturbations, u_k = z_k/√D (members: optim/zo_step.h), so
//             ĝ = Σ_k g_k u_k / N and θ ← θ·decay − lr·ĝ; each entry's curvature
//             records h_k ≈ |L(θ+εu)+L(θ−εu)−2L(θ)|/2ε² then move D toward
//             h·D⊙z²: D ← (1−α)·D + α·(Σ_k h_k z_k² / N_h)·D  (α = hessian_smooth)
// and, with allora_eta η > 0, any rule's step per row r of a tensor (a 2-D
// tensor's rows; a vector is one row) is scaled by ALLoRA's
//   f_r = 1 / √(‖θ_r‖² + 1/η²)      (‖θ_r‖ at the start of the step)
// a learning rate inversely proportional to the row's ℓ2 norm, η where the row is 0.
// With grad_weight α in [0, 1] (Addax's mix), an entry holding both gradient
// records (exact projections from members that backpropagate) and ZO records
// estimates ĝ = α·Σ_grad g_k z_k / N_grad + (1 − α)·Σ_zo g_k z_k / N_zo, i.e.
// q_k = (g_k · α) / N_grad or (g_k · float(1 − α)) / N_zo; an entry of one kind
// alone keeps q_k = g_k / N.
// With directions other than plain z (optim/directions.h: LOZO's rank-r
// U·Vᵀ/√r on matrices, zo.lozo_rank; the orthogonal slots' signed copies of slot
// 0's z, zo.orthogonal_slots), z_k is that direction and ĝ is a = 0·1 − acc with
// acc = Σ_k c_k·z_k in record order, as sign forms it.
// With a sparse mask on θ (TrainableSet::mask, trainable.sparse_density), ĝ and
// the direction are zero off the mask and those coordinates keep their bits
// (no weight decay either): only the masked coordinates ever move.
// With lisa_layers K > 0 (LISA), a step moves only the tensors of the K layers
// sampled for it (optim/layer_sampling.h) and those outside every layer; the
// others only decay, and their rule state (m, v) stays as it was.
//
// Float operations, each rounded separately (no FMA), with lr = entry.lr (the
// ledger's, never recomputed from the schedule) and z_k = z(run_seed, step,
// member_k, slot_k):
//   g_k   = float(int8(code_k)) · entry.scale           (decode_gradient)
//   q_k   = g_k / float(N)
//   decay = 1.0f − (lr · weight_decay)
//   sgd:      c_k = lr · q_k;  θ = θ·decay − acc,  acc = Σ_k c_k·z_k in record order
//             (core apply_perturbations, exactly)
//   momentum: c_k = −q_k;  m = m·β − acc (apply_perturbations on m, decay β);
//             then θ = θ·decay − lr·m
//   sign:     c_k = −q_k;  a = 0·1 − acc (apply_perturbations on zeros);
//             θ = θ·decay − lr·sign(a), sign(±0) = 0, so lr·sign is exact
//   the rules below, and any rule with allora_eta > 0, first form a = ĝ as sign does, then a
//   direction d:
//     sgd, muon (vectors): d = a;  momentum: m = m·β + a, d = m;  sign: d = sign(a)
//     adam:    m = m·β1 + (1−β1)·a;  v = v·β2 + (1−β2)·(a·a);
//              d = (m / bc1) / (sqrt(v / bc2) + eps)
//              with (1−β) = float(1 − β), bc = float(1 − β^t) and β^t the product
//              of t factors β in double, t = the non-empty entries so far
//     adamezo: the same from m = v = 0 over the window's entries, oldest first,
//              t = the window's length
//     muon (matrices): d = newton_schulz(a) · float(√max(1, rows/cols))
//     hizoo:   d = a / sqrt(D); then, where the entry has curvature records
//              (c_k = h_k / float(N_h), h_k = decode_curvature(code_k), in record
//              order): b = Σ_k c_k·(z_k·z_k), D = D·float(1 − α) + α·(b·D)
//   and θ = θ·decay − lr·d, or θ = θ·decay − (lr·f_r)·d with ALLoRA (f_r in
//   double from Σ θ² in element order, rounded to float once).
// An entry with no records (nobody answered) only decays θ: θ = θ·decay; the
// momentum and moment buffers are left as they are (and count no step).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/apply.h"
#include "core/perturb.h"
#include "optim/codec.h"
#include "optim/ledger.h"
#include "optim/directions.h"
#include "optim/trainable.h"

namespace zeroth {

enum class UpdateRule : uint8_t { Sgd, Momentum, Sign, Adam, AdaMezo, Muon, HiZoo };
const char* update_rule_name(UpdateRule r);
// "sgd", "momentum", … → the rule; throws zeroth::Error naming the choices.
UpdateRule parse_update_rule(const std::string& name, const char* key = "optimizer.rule");

enum class LrSchedule : uint8_t { Constant, Linear, Cosine };

struct OptimizerConfig {
  UpdateRule rule = UpdateRule::Sgd;
  float lr = 1e-3f;
  float weight_decay = 0.0f;
  float momentum = 0.9f;          // β for UpdateRule::Momentum
  float beta1 = 0.9f;             // adam, adamezo: the first moment's β1
  float beta2 = 0.999f;           // adam, adamezo: the second moment's β2
  float adam_eps = 1e-8f;         // adam, adamezo: added to √v̂
  int horizon = 16;               // adamezo: H, the entries its moments are recomputed from
  int muon_steps = 5;             // muon: Newton–Schulz iterations
  float allora_eta = 0.0f;        // > 0: ALLoRA's per-row learning-rate factor (η: its value at a zero row)
  int lisa_layers = 0;            // zo.lisa_layers: > 0, only that many sampled layers step (optim/layer_sampling.h)
  float grad_weight = -1.0f;      // α in [0, 1] (Addax): gradient records weigh α, ZO records 1 − α; < 0: off
  float hessian_smooth = 1e-6f;   // hizoo: α, the EMA weight of each step's curvature in the diagonal estimate D
  Directions directions;          // zo.lozo_rank/lozo_period/orthogonal_slots: the z each record steps along
  LrSchedule schedule = LrSchedule::Constant;
  int64_t warmup_steps = 0;       // linear warmup from 0
  int64_t total_steps = 0;        // for linear/cosine decay to 0 (0 = no decay)
  Distribution distribution = Distribution::Rademacher;
  uint64_t run_seed = 0;
  uint32_t key_group = 1;  // zo.redundancy: a record of member m moves along z of key_member(m, key_group)
  void validate() const;
  // What the rule keeps beside θ, in floats (for the memory figures): 2|θ| for
  // adam, |θ| for momentum and hizoo, 0 for the others.
  int64_t state_floats(int64_t theta_size) const;
  // True when a snapshot of θ alone stands for a prefix of the ledger (the rule
  // keeps no state beside θ that later steps read).
  bool stateless() const;
  // The schedule, computed in double and rounded to float once. Warmup: steps
  // 0 .. warmup−1 get lr·(step+1)/warmup (the first step is not wasted at lr 0).
  // Then with p = (step − warmup)/(total − warmup) clamped to [0, 1]:
  // linear lr·(1 − p), cosine lr·(1 + cos πp)/2 (std::cos: the committing node
  // evaluates it once and the ledger stores the result, so replicas never do).
  float lr_at(uint64_t step) const;
};

// The member whose key perturbs `member`'s slots: the first of its group of
// `redundancy` members (the member itself when redundancy is 1).
inline uint32_t key_member(uint32_t member, uint32_t redundancy) {
  return redundancy <= 1 ? member : member - member % redundancy;
}

// Holds the optimizer state beside θ and applies entries to it.
class ZerothOrderOptimizer {
 public:
  ZerothOrderOptimizer(const OptimizerConfig& cfg, TrainableSet& theta, int threads = 0);
  ~ZerothOrderOptimizer();

  // θ_t → θ_{t+1} for one committed entry (its records decoded at entry.scale).
  // Throws zeroth::Error (naming the step) for a step past 2^32 − 1, a malformed
  // code or a θ that grew since construction; θ is untouched then.
  void apply(const StepEntry& entry);
  // Replays many entries in one pass over θ for every rule: θ (and m) is cut
  // into chunks of kReplayChunk elements that stay in cache while every entry is
  // applied to them in order. Bit-identical to applying them one by one.
  void replay(std::span<const StepEntry> entries);

  // A GPU replica's θ: one entry of the sgd rule applied to device copies of
  // θ's tensors (TrainableSpan::data in device memory, at θ's offsets) by the
  // CUDA apply kernel, the same bits as apply() on the host. The momentum and
  // sign rules keep θ on the host (they throw here), as does a build without CUDA.
  void apply_cuda(const StepEntry& entry, std::span<const TrainableSpan> device_tensors) const;

  const OptimizerConfig& config() const { return cfg_; }
  // momentum: m; adam: the first moment m (second_moment() is v).
  const std::vector<float>& momentum_buffer() const { return m_; }
  const std::vector<float>& second_moment() const { return v_; }
  // hizoo: the diagonal curvature estimate D (also lent to θ: TrainableSet::curvature).
  const std::vector<float>& curvature() const { return d_; }
  // Restores m (e.g. saved beside a snapshot); size must be θ's.
  void load_momentum(std::span<const float> m);

  // Elements of θ per replay work item: θ and m chunks (64 KiB each) stay in L2.
  static constexpr int64_t kReplayChunk = 8 * kApplyChunk;

 private:
  struct Prepared {
    std::shared_ptr<const std::vector<ScaledPerturbation>> terms;  // in record order; empty: decay only
    std::vector<ScaledPerturbation> curvature;  // hizoo: (key, h_k / N_h) of the curvature records
    float decay = 1.0f;
    float lr = 0.0f;
    uint64_t step = 0;
    float bc1 = 1.0f, bc2 = 1.0f;  // adam, adamezo: 1 − β^t
    // adamezo: the terms of the window's entries, oldest first, this one last.
    std::vector<std::shared_ptr<const std::vector<ScaledPerturbation>>> window;
  };
  Prepared prepare(const StepEntry& e) const;
  // Prepares `entries` in order, with the moment counts each one sees; checks
  // everything before anything changes.
  std::vector<Prepared> prepare_all(std::span<const StepEntry> entries) const;
  // sgd, momentum and sign: the fused windows of update.cpp.
  void run_fused(std::span<const Prepared> entries);
  // adam and adamezo: fused windows over the rules' elementwise direction.
  void run_fused_adaptive(std::span<const Prepared> entries);
  // muon and any rule with ALLoRA: entry by entry, tensor by tensor.
  void run_tensorwise(std::span<const Prepared> entries);
  void check_sizes() const;
  // sgd, momentum or sign with plain z and no ALLoRA, LISA or mask: their closed-form fused formulas.
  bool legacy_path() const;
  void run(std::span<const Prepared> entries);
  // After a batch of entries: the counters and adamezo's window move on.
  void commit_prepared(std::span<const Prepared> entries);
  OptimizerConfig cfg_;
  TrainableSet& theta_;
  int threads_;
  std::vector<float> m_, v_;      // momentum's m; adam's m and v
  std::vector<float> d_;          // hizoo's D
  uint64_t moment_steps_ = 0;     // non-empty entries applied (adam's t; adamezo's window fill)
  int layers_ = 0;                // layer_count(θ), for LISA's draw
  std::vector<std::shared_ptr<const std::vector<ScaledPerturbation>>> recent_;  // adamezo: the last H, oldest first
};

// θ cut into windows of global indices [w·kReplayChunk, (w+1)·kReplayChunk):
// the pieces of every tensor inside each window (fused replay's work items).
std::vector<std::vector<TrainableSpan>> replay_windows(const TrainableSet& theta);

}  // namespace zeroth
