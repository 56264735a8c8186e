// A replica: θ and everything that evolves with it, as one function of the
// ledger. "θ is its base plus the committed entries" is written here once and
// used by every place that holds θ: a training member (every transport), the
// elastic coordinator and worker, replay and export.
//
// What the replica keeps, all deterministic functions of the entries so far:
//   θ          the trainable set (LoRA adapters, norms or full weights) from θ_0
//   optimizer  the update rule and its state (optim/update.h)
//   codec      the codec scale s_t for the next step (optim/codec.h)
//   screen     the robust screen's windows of recent codes (optim/robust.h)
// Entries arrive in ledger order. Where a snapshot of θ stands in for a prefix
// of the ledger (restore()), the entries of that prefix still go through
// replay(): they move the codec and the screen, not θ.
//
// Where an entry is committed (the leader of a run, every MPI rank, the
// coordinator), commit_filter() turns the gathered records into what the
// ledger holds: the screen's and the robust rule's decisions, which depend on
// the entries before it and on nothing else.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/formats/named_tensor.h"
#include "models/causal_lm.h"
#include "models/lora.h"
#include "optim/codec.h"
#include "optim/ledger.h"
#include "optim/lora_trainable.h"
#include "optim/robust.h"
#include "optim/update.h"

namespace zeroth {

// What shapes θ_0 and how entries move it: the recipe's lora, trainable,
// optimizer, codec and robust sections and the run seed.
struct ReplicaConfig {
  LoraConfig lora;
  TrainableOptions trainable;
  OptimizerConfig optimizer;
  CodecConfig codec;
  RobustConfig robust;
  uint64_t seed = 0;  // run.seed: θ_0's initialization
};

// What commit_filter() did to an entry's records.
struct CommitFilterStats {
  int64_t screened = 0;  // records of flagged members, dropped
  RobustStats robust;    // the robust rule's clipping or trimming
};

class Replica {
 public:
  // θ_0 for `model`; `threads` compute the optimizer's passes over θ (<= 0: all).
  Replica(const ReplicaConfig& cfg, const CausalLM& model, int threads = 0);
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Back to θ_0 with no entries.
  void reset();

  // True when the update rule keeps no state beside θ, so a snapshot of θ
  // alone can stand in for a prefix of the ledger.
  bool snapshot_restores() const;
  // θ after `step` entries, from a snapshot; checks its hash. Only from θ_0
  // with no entry applied, and only where snapshot_restores(); the entries
  // 0..step−1 must then still be replayed (they fold into the codec and screen).
  // Errors name `source`; θ is untouched by a failed restore.
  void restore(const TensorList& tensors, uint64_t step, const std::string& hash, const std::string& source);

  // Screens and filters a gathered entry the way every replica's ledger will
  // hold it (the entry's step must be the next one). Changes only `entry`.
  CommitFilterStats commit_filter(StepEntry& entry) const;

  // The next entry (step == steps()): θ, the optimizer, codec and screen move.
  void apply(const StepEntry& entry);
  // Consecutive entries from the next one, in one fused pass over θ; those
  // before a restored snapshot's step fold into the codec and screen only.
  void replay(std::span<const StepEntry> entries);

  uint64_t steps() const { return folded_; }  // entries this replica holds
  float scale() const { return codec_.scale(); }  // s_t for step steps()
  std::string hash() const { return lora_->set().hash().hex(); }

  LoraTrainable& lora() { return *lora_; }
  const LoraTrainable& lora() const { return *lora_; }
  TrainableSet& theta() { return lora_->set(); }
  const TrainableSet& theta() const { return lora_->set(); }
  const ZerothOrderOptimizer& optimizer() const { return *opt_; }
  const ReplicaConfig& config() const { return cfg_; }

 private:
  void check_next(const StepEntry& e, uint64_t expected) const;
  void fold(const StepEntry& e);  // codec and screen

  ReplicaConfig cfg_;
  int threads_;
  std::unique_ptr<LoraTrainable> lora_;  // heap: views (PerturbedLora) keep a reference across reset()
  std::unique_ptr<ZerothOrderOptimizer> opt_;
  CodecScale codec_;
  Screen screen_;
  uint64_t theta_steps_ = 0;  // entries reflected in θ (a restored snapshot's step, then every applied entry)
  uint64_t folded_ = 0;       // entries folded into the codec and screen
};

}  // namespace zeroth
