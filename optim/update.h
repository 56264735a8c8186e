// Applying committed ledger entries to θ: the update rules of zeroth-order SGD.
//
// An entry's records become decoded projected gradients g_k; with N = the
// number of records and z_k the perturbation of (run, step, member, slot):
//   sgd:      θ ← θ·(1 − lr·wd) − lr · Σ_k g_k z_k / N                (MeZO)
//   momentum: m ← β·m + Σ_k g_k z_k / N;  θ ← θ·(1 − lr·wd) − lr·m
//   sign:     θ ← θ·(1 − lr·wd) − lr · sign(Σ_k g_k z_k / N)
// All state (θ, m) is a deterministic function of the ledger: the same entries
// give the same bits on every replica, thread count and backend.
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
// An entry with no records (nobody answered) only decays θ: θ = θ·decay; the
// momentum buffer is left as it is.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/apply.h"
#include "core/perturb.h"
#include "optim/codec.h"
#include "optim/ledger.h"
#include "optim/trainable.h"

namespace zeroth {

enum class UpdateRule : uint8_t { Sgd, Momentum, Sign };
const char* update_rule_name(UpdateRule r);

enum class LrSchedule : uint8_t { Constant, Linear, Cosine };

struct OptimizerConfig {
  UpdateRule rule = UpdateRule::Sgd;
  float lr = 1e-3f;
  float weight_decay = 0.0f;
  float momentum = 0.9f;          // β for UpdateRule::Momentum
  LrSchedule schedule = LrSchedule::Constant;
  int64_t warmup_steps = 0;       // linear warmup from 0
  int64_t total_steps = 0;        // for linear/cosine decay to 0 (0 = no decay)
  Distribution distribution = Distribution::Rademacher;
  uint64_t run_seed = 0;
  uint32_t key_group = 1;  // zo.redundancy: a record of member m moves along z of key_member(m, key_group)
  void validate() const;
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
  const std::vector<float>& momentum_buffer() const { return m_; }
  // Restores m (e.g. saved beside a snapshot); size must be θ's.
  void load_momentum(std::span<const float> m);

  // Elements of θ per replay work item: θ and m chunks (64 KiB each) stay in L2.
  static constexpr int64_t kReplayChunk = 8 * kApplyChunk;

 private:
  struct Prepared;  // one entry's terms, decay and lr
  Prepared prepare(const StepEntry& e) const;
  void run_fused(std::span<const Prepared> entries);
  OptimizerConfig cfg_;
  TrainableSet& theta_;
  int threads_;
  std::vector<float> m_;
};

}  // namespace zeroth
