#include "optim/replica.h"

#include "core/error.h"

namespace zeroth {

Replica::Replica(const ReplicaConfig& cfg, const CausalLM& model, int threads)
    : cfg_(cfg),
      threads_(threads),
      lora_(std::make_unique<LoraTrainable>(cfg.lora, model, cfg.trainable)),
      codec_(cfg.codec),
      screen_(cfg.robust) {
  reset();
}

void Replica::reset() {
  lora_->initialize(cfg_.seed);
  opt_.reset();  // the old optimizer goes first: it returns what it lent θ (hizoo's D)
  opt_ = std::make_unique<ZerothOrderOptimizer>(cfg_.optimizer, lora_->set(), threads_);
  codec_ = CodecScale(cfg_.codec);
  screen_ = Screen(cfg_.robust);
  theta_steps_ = folded_ = 0;
}

bool Replica::snapshot_restores() const { return cfg_.optimizer.stateless(); }

void Replica::restore(const TensorList& tensors, uint64_t step, const std::string& hash, const std::string& source) {
  ZEROTH_CHECK(snapshot_restores(), "{}: the {} rule keeps state beside θ, so a snapshot of θ cannot stand in for "
               "the ledger; replay from θ_0", source, update_rule_name(cfg_.optimizer.rule));
  ZEROTH_CHECK(folded_ == 0 && theta_steps_ == 0, "{}: a snapshot restores θ_0's replica only (this one holds {} "
               "entries)", source, folded_);
  TrainableSet& set = lora_->set();
  const TensorList before = set.snapshot();
  set.restore(tensors, source);
  if (set.hash().hex() != hash) {
    const std::string got = set.hash().hex();
    set.restore(before, source);
    throw Error(fmt::format("{}: the snapshot's tensors hash to {}, not to its recorded {}", source, got, hash));
  }
  theta_steps_ = step;
}

CommitFilterStats Replica::commit_filter(StepEntry& e) const {
  check_next(e, folded_);
  CommitFilterStats st;
  st.screened = screen_.filter(e);
  st.robust = robust_filter(e, cfg_.robust);
  return st;
}

void Replica::check_next(const StepEntry& e, uint64_t expected) const {
  ZEROTH_CHECK(e.step == expected, "entry for step {} arrived when step {} was next", e.step, expected);
}

void Replica::fold(const StepEntry& e) {
  codec_.update(e);
  screen_.observe(e);
  ++folded_;
}

void Replica::apply(const StepEntry& e) { replay(std::span<const StepEntry>(&e, 1)); }

void Replica::replay(std::span<const StepEntry> entries) {
  for (size_t i = 0; i < entries.size(); ++i) check_next(entries[i], folded_ + i);
  // Entries before a restored snapshot's step are already in θ.
  size_t skip = 0;
  while (skip < entries.size() && entries[skip].step < theta_steps_) ++skip;
  const auto rest = entries.subspan(skip);
  if (rest.size() == 1)
    opt_->apply(rest.front());
  else if (!rest.empty())
    opt_->replay(rest);
  theta_steps_ += rest.size();
  for (const StepEntry& e : entries) fold(e);
}

}  // namespace zeroth
