// Which logical members backpropagate or run forward-mode passes (the
// gradient path) and how many slots each sends. Roles come from the config
// (roles.grad, roles.jvp) or, with roles.auto, from this process's free memory
// against the measured peak of one step: members whose backward fits become
// gradient members, else JVP members where a forward-mode pass fits, else
// they stay zeroth-order. Every participant must agree on the result (the
// record layout depends on it), so each decides for the members it hosts and
// the decisions are gathered.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "comm/transport.h"
#include "launch/trainer.h"
#include "optim/zo_step.h"

namespace zeroth::cli {

// One step of `member` in `role` (ZO differences, a backward with the run's
// checkpointing, or a forward-mode pass with roles.jvp_directions), with the
// run's slot count for that role. Throws std::bad_alloc where memory runs out.
MemberStepResult step_in_role(const TrainConfig& c, MemberRole role, const CausalLM& model, const Task& task,
                              const LoraTrainable& lora, uint64_t step, uint32_t member, uint32_t members,
                              float codec_scale, uint32_t lane = kOwnLane);

// step_in_role, where a gradient or JVP step that runs out of memory sets
// `fallen_back` and says so once (prefixed by `who`); from then on the
// member's records come from ZO differences, filling what they can of its
// role's slots (the rest travel as dropped). The ledger does not care which
// kind its records are.
MemberStepResult step_with_fallback(const TrainConfig& c, MemberRole role, bool& fallen_back, const std::string& who,
                                    const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                    uint64_t step, uint32_t member, uint32_t members, float codec_scale,
                                    uint32_t lane = kOwnLane);

// One step of `member` in `role` (Grad: a backward with the run's
// checkpointing; Jvp: a forward-mode pass with roles.jvp_directions) at step
// 0, alone: what it added to this process's peak RSS and how long it took.
struct RoleProbe {
  bool ok = false;          // false: it ran out of memory
  int64_t peak_bytes = 0;   // VmHWM after − VmRSS before (the peak is reset first where the kernel allows)
  double seconds = 0;
  std::string why;          // when !ok
};
RoleProbe probe_role(const TrainContext& ctx, MemberRole role, uint32_t member, uint32_t members);

// roles.auto for one process: probes a backward, and a forward-mode pass when
// the backward does not fit; the role `count` members get from `budget`
// bytes (Zo when neither fits), and how many of them fit. Prints what it
// measured, prefixed by `who`.
struct AutoRole {
  MemberRole role = MemberRole::Zo;
  int fit = 0;  // members of that role the budget holds
};
AutoRole choose_auto_role(const TrainContext& ctx, uint32_t member, uint32_t members, int64_t budget,
                          const std::string& who);

// The memory a gradient or JVP member is allowed per measured peak:
// fragmentation and the variance of sample lengths ride on the measurement.
constexpr double kRoleHeadroom = 1.25;
constexpr int64_t kMinMemberBytes = int64_t(1) << 20;  // the least a member is counted at

// How many members `budget` bytes hold at `peak` bytes each (with headroom).
int members_that_fit(int64_t budget, int64_t peak);

// The bytes this process may give its gradient members: roles.memory, or the
// machine's available memory shared by `local_ranks` ranks.
int64_t role_memory_budget(const TrainConfig& c, int local_ranks);

// Resolves every logical member's role: ctx.config.roles.grad and .jvp, plus,
// with roles.auto, the other hosted members the budget holds (probing one
// step). `gather` exchanges one string per participant (identity for one
// process). Returns one role per logical member; `say` prints the decision.
std::vector<MemberRole> resolve_roles(const TrainContext& ctx, const std::vector<uint32_t>& hosted, uint32_t members,
                                int local_ranks, bool say,
                                const std::function<std::vector<std::string>(const std::string&)>& gather);

// The record layout of a run with these roles: zo.q slots per member, and
// roles.grad_slots for gradient and JVP members where that differs.
RecordLayout record_layout(const TrainConfig& c, const std::vector<MemberRole>& roles);

}  // namespace zeroth::cli
