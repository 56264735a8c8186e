// Which logical members backpropagate (issue 9's gradient path) and how many
// slots each sends. Roles come from the config (roles.grad) or, with
// roles.auto, from this process's free memory against the measured peak of one
// backward step: members whose backward fits become gradient members, the
// others stay zeroth-order. Every participant must agree on the result (the
// record layout depends on it), so each decides for the members it hosts and
// the decisions are gathered.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "comm/transport.h"
#include "launch/trainer.h"

namespace zeroth::cli {

// One backward step of `member` at step 0, alone, with the run's checkpointing:
// what it added to this process's peak RSS and how long it took.
struct BackwardProbe {
  bool ok = false;          // false: it ran out of memory
  int64_t peak_bytes = 0;   // VmHWM after − VmRSS before (the peak is reset first where the kernel allows)
  double seconds = 0;
  std::string why;          // when !ok
};
BackwardProbe probe_backward(const TrainContext& ctx, uint32_t member, uint32_t members);

// The memory a gradient member is allowed per measured peak: fragmentation and
// the variance of sample lengths ride on the measurement.
constexpr double kBackwardHeadroom = 1.25;

// How many gradient members `budget` bytes hold at `peak` bytes each.
int gradient_members_that_fit(int64_t budget, int64_t peak);

// The bytes this process may give its gradient members: roles.memory, or the
// machine's available memory shared by `local_ranks` ranks.
int64_t role_memory_budget(const TrainConfig& c, int local_ranks);

// Resolves every logical member's role: ctx.config.roles.grad, plus, with
// roles.auto, the hosted members the budget holds (probing one backward).
// `gather` exchanges one string per participant (identity for one process).
// Returns one flag per logical member (1: gradient member); `say` prints the
// decision.
std::vector<char> resolve_roles(const TrainContext& ctx, const std::vector<uint32_t>& hosted, uint32_t members,
                                int local_ranks, bool say,
                                const std::function<std::vector<std::string>(const std::string&)>& gather);

// The record layout of a run with these roles: zo.q slots per member, and
// roles.grad_slots for gradient members where that differs.
RecordLayout record_layout(const TrainConfig& c, const std::vector<char>& grad);

}  // namespace zeroth::cli
