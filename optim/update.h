// Applying committed ledger entries to θ: the update rules of zeroth-order SGD.
//
// An entry's records become decoded projected gradients g_k; with N = the
// number of records and z_k the perturbation of (run, step, member, slot):
//   sgd:      θ ← θ·(1 − lr·wd) − lr · Σ_k g_k z_k / N                (MeZO)
//   momentum: m ← β·m + Σ_k g_k z_k / N;  θ ← θ·(1 − lr·wd) − lr·m
//   sign:     θ ← θ·(1 − lr·wd) − lr · sign(Σ_k g_k z_k / N)
// All state (θ, m) is a deterministic function of the ledger: the same entries
// give the same bits on every replica, thread count and backend.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

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
  void validate() const;
  float lr_at(uint64_t step) const;  // the schedule, in float, deterministic
};

// Holds the optimizer state beside θ and applies entries to it.
class ZerothOrderOptimizer {
 public:
  ZerothOrderOptimizer(const OptimizerConfig& cfg, TrainableSet& theta, int threads = 0);

  // θ_t → θ_{t+1} for one committed entry (its records decoded at entry.scale).
  void apply(const StepEntry& entry);
  // Replays many entries, fused into as few passes over θ as the rule allows
  // (SGD: one pass for all entries, chunk by chunk); bit-identical to applying
  // them one by one.
  void replay(std::span<const StepEntry> entries);

  const OptimizerConfig& config() const { return cfg_; }
  const std::vector<float>& momentum_buffer() const { return m_; }

 private:
  std::vector<ScaledPerturbation> terms(const StepEntry& e, float sign) const;
  OptimizerConfig cfg_;
  TrainableSet& theta_;
  int threads_;
  std::vector<float> m_;
};

}  // namespace zeroth
