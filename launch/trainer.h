// The training loop of one member (orchestration only): the zeroth-order step
// from optim/, the step protocol through a Transport from comm/, and — on the
// leader — the ledger, metrics, snapshots and evaluations in the run directory.
// The same loop runs under every transport.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "comm/transport.h"
#include "optim/ledger.h"
#include "optim/lora_trainable.h"
#include "optim/update.h"
#include "launch/run_dir.h"
#include "launch/train_config.h"
#include "models/causal_lm.h"
#include "models/tasks/task.h"
#include "models/tokenizer.h"

namespace zeroth::cli {

// What every member of a process shares (read-only during training).
struct TrainContext {
  TrainConfig config;
  std::unique_ptr<CausalLM> model;  // the frozen base
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Task> task;
  RunDir dir;
  std::string base_hash;
  std::atomic<bool>* stop = nullptr;  // set by SIGINT: stop after the current step
  int member_threads = 1;             // compute threads of each member
  // Resuming: the committed entries so far (read once), and the leader's
  // ledger file to append to.
  std::vector<StepEntry> history;
  LedgerFile* ledger = nullptr;
};

// Loads the model, tokenizer and task of `config`; logs what it loaded.
TrainContext make_train_context(const TrainConfig& config);

struct MemberOutcome {
  uint64_t steps_done = 0;        // entries in the ledger at the end
  std::string final_hash;
  uint64_t bytes_sent = 0;        // by this member, at its transport (records, hashes, statistics)
  uint64_t record_bytes_sent = 0; // of which records messages (the one-byte-per-sample protocol)
  uint64_t steps_run = 0;         // steps this process ran (excludes replayed ones)
};

// Brings a freshly initialized θ (and the codec scale) to the end of
// `history`: the newest usable snapshot in `dir` (SGD only), then a fused replay
// of the rest. Returns the step reached.
uint64_t catch_up(LoraTrainable& lora, ZerothOrderOptimizer& opt, CodecScale& codec,
                  const std::vector<StepEntry>& history, const RunDir* dir, UpdateRule rule);

// Runs member `transport.member()` to the end of the run (or a stop request).
MemberOutcome run_member(const TrainContext& ctx, Transport& transport);

}  // namespace zeroth::cli
