// The training loop of one member (orchestration only): the zeroth-order step
// from optim/, the step protocol through a Transport from comm/, and — on the
// leader — the ledger, metrics, snapshots and evaluations in the run directory.
// The same loop runs under every transport.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "comm/transport.h"
#include "core/error.h"
#include "optim/ledger.h"
#include "optim/lora_trainable.h"
#include "optim/replica.h"
#include "optim/robust.h"
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
  // Its copy on GPU 0 for the members model.device / model.cuda_members put
  // there (attach_cuda_model), or null.
  std::unique_ptr<CausalLM> cuda_model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Task> task;  // the shared data; with private data ({rank} in a path), this process's
  // Private per-member data of the local transport ({rank} = member index), by member.
  std::vector<std::unique_ptr<Task>> member_tasks;
  RunDir dir;
  std::string base_hash;
  int64_t model_parameters = 0;  // of the base, for the bytes-vs-gradient figures
  std::atomic<bool>* stop = nullptr;  // set by SIGINT: stop after the current step
  int member_threads = 1;             // compute threads of each participant (thread or rank)
  int eval_threads = 1;               // threads of the leader's evaluations
  // Debug: corrupt θ on participant corrupt_rank after step corrupt_step, to
  // show the hash check stops the run (--debug-corrupt RANK:STEP).
  int64_t corrupt_rank = -1, corrupt_step = -1;
  // Debug/attack suite: these logical members poison their codes (--debug-attack KIND:M,M,...).
  Attack attack = Attack::None;
  std::vector<uint32_t> attackers;
  // Resuming: the committed entries so far (read once), and the leader's
  // ledger file to append to.
  std::vector<StepEntry> history;
  LedgerFile* ledger = nullptr;
  // Resuming mode fo: its newest snapshot (θ and the AdamW moments), which
  // rank 0 read and every rank holds.
  std::optional<Snapshot> fo_resume;

  // Resolved roles (launch/roles.h), one per logical member. Empty: the
  // config's roles.grad / roles.jvp as written.
  std::vector<MemberRole> member_roles;

  // The model member `member` computes with. The leader's evaluations run where
  // member 0 (the leader's) computes, so a run's figures do not depend on
  // which other members hold a GPU.
  const CausalLM& model_of(uint32_t member) const {
    return cuda_model && config.model.on_cuda(member) ? *cuda_model : *model;
  }
  const CausalLM& eval_model() const { return model_of(0); }
  const Task& task_of(uint32_t member) const { return member_tasks.empty() ? *task : *member_tasks.at(member); }
  MemberRole role_of(uint32_t member) const {
    if (member_roles.empty()) return config.roles.role_of(member);
    return member < member_roles.size() ? member_roles[member] : MemberRole::Zo;
  }
};

// How this process takes part: the local transport (every member a thread
// here) or one rank of an MPI job.
struct ProcessRole {
  bool mpi = false;
  uint32_t rank = 0, ranks = 1;
  int local_ranks = 1;  // ranks on this node, which share its cores
  bool quiet = false;   // not the leader: do not repeat the load log
};

// True when a task path holds {rank}: each rank (or member) reads its own data.
bool private_data(const TaskConfig& task);
// `task` with {rank} in its paths replaced by `rank`.
TaskConfig task_for_rank(TaskConfig task, uint32_t rank);

// Loads the model, tokenizer and task(s) of `config`; logs what it loaded.
TrainContext make_train_context(const TrainConfig& config, const ProcessRole& role = {});
// Uploads the base to GPU 0 (ctx.cuda_model) when one of the `hosted` members
// runs there (model.device, model.cuda_members); says so when `say`. Throws,
// naming the keys, where no GPU is usable.
void attach_cuda_model(TrainContext& ctx, const std::vector<uint32_t>& hosted, bool say);

struct MemberOutcome {
  uint64_t steps_done = 0;        // entries in the ledger at the end
  std::string final_hash;
  uint64_t bytes_sent = 0;        // by this member, at its transport (records, hashes, statistics)
  uint64_t record_bytes_sent = 0; // of which records messages (the one-byte-per-sample protocol)
  uint64_t steps_run = 0;         // steps this process ran (excludes replayed ones)
  size_t hosted = 1;              // logical members this participant hosted
};

// Raised identically on every participant (replicas diverged): the leader
// reports it; nobody needs to tear the group down.
struct CollectiveError : Error {
  using Error::Error;
};

// Opens (run.resume) or creates the run directory and its ledger; on resume,
// checks the run's shape is unchanged and fills ctx.history.
std::unique_ptr<LedgerFile> prepare_run_dir(TrainContext& ctx, const TrainConfig& c, const std::string& theta0_hash);
// Resuming mode fo: the run directory's newest snapshot (throws, naming the
// directory, where there is none); nullopt for anything else.
std::optional<Snapshot> fo_resume_snapshot(const TrainContext& ctx);

// Brings a replica at θ_0 to the end of `history`: the newest usable snapshot
// in `dir` (for rules that keep no state beside θ), then a fused replay of the
// rest. Returns the step reached.
uint64_t catch_up(Replica& replica, const std::vector<StepEntry>& history, const RunDir* dir);

// Runs participant `transport.rank()` — its hosted logical members — to the end
// of the run (or a stop request).
MemberOutcome run_member(const TrainContext& ctx, Transport& transport);
// An evaluation as a metrics line, and as the progress line "WHAT: loss …, accuracy …".
nlohmann::json eval_json(const char* split, uint64_t step, const EvalResult& r);
std::string eval_line(const char* what, const EvalResult& r);
// mode: fo (launch/trainer_fo.cpp): every member backpropagates; gradients are
// reduced over the transport in member order and AdamW updates θ. run_member
// calls it when the config says so.
MemberOutcome run_member_fo(const TrainContext& ctx, Transport& transport);

}  // namespace zeroth::cli
