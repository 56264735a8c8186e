#include "launch/roles.h"

#include <chrono>
#include <cmath>
#include <new>
#include <sstream>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/sysmem.h"
#include "optim/grad_step.h"
#include "optim/lora_trainable.h"

namespace zeroth::cli {

BackwardProbe probe_backward(const TrainContext& ctx, uint32_t member, uint32_t members) {
  const TrainConfig& c = ctx.config;
  BackwardProbe out;
  LoraTrainable lora(c.lora, *ctx.model, c.trainable);
  lora.initialize(c.run.seed);
  ZoConfig zo = c.zo;
  zo.q = 1;  // the backward is the peak; projections add one chunk of z
  reset_peak_rss();
  const ProcessMemory before = process_memory();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    grad_member_step(*ctx.model, ctx.task_of(member), lora, zo, GradConfig{c.roles.checkpoint}, c.run.seed,
                     c.task.data_seed, 0, member, members, 1.0f);
    out.ok = true;
  } catch (const std::bad_alloc&) {
    out.why = "out of memory in the probe backward";
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.peak_bytes = std::max<int64_t>(0, process_memory().peak - before.rss);
  return out;
}

int gradient_members_that_fit(int64_t budget, int64_t peak) {
  if (budget <= 0) return 0;
  const double each = std::max(1.0, double(peak) * kBackwardHeadroom);
  return int(std::min(1e6, std::floor(double(budget) / each)));
}

int64_t role_memory_budget(const TrainConfig& c, int local_ranks) {
  if (!c.roles.memory.empty()) return parse_byte_size(c.roles.memory, "roles.memory");
  return available_memory() / std::max(1, local_ranks);
}

namespace {
std::string mib(int64_t bytes) { return fmt::format("{:.0f} MiB", double(bytes) / 1048576.0); }
}  // namespace

std::vector<char> resolve_roles(const TrainContext& ctx, const std::vector<uint32_t>& hosted, uint32_t members,
                                int local_ranks, bool say,
                                const std::function<std::vector<std::string>(const std::string&)>& gather) {
  const TrainConfig& c = ctx.config;
  std::vector<char> grad(members, 0);
  for (const int m : c.roles.grad) grad.at(size_t(m)) = 1;
  // This participant's auto decisions, "m,m,", or "!why": every participant
  // then fails with the same message instead of leaving the others waiting.
  std::string mine;
  if (c.roles.auto_grad) try {
    std::vector<uint32_t> candidates;
    int fixed = 0;
    for (const uint32_t m : hosted) {
      if (grad[m]) ++fixed;  // configured gradient members take their share first
      else candidates.push_back(m);
    }
    if (!candidates.empty()) {
      const int64_t budget = role_memory_budget(c, local_ranks);
      const BackwardProbe p = probe_backward(ctx, candidates.front(), members);
      const int fit = p.ok ? std::max(0, gradient_members_that_fit(budget, p.peak_bytes) - fixed) : 0;
      std::vector<uint32_t> chosen(candidates.begin(), candidates.begin() + std::min<size_t>(candidates.size(), size_t(fit)));
      for (const uint32_t m : chosen) mine += fmt::format("{},", m);
      fmt::print(stderr, "roles.auto: {}; {} for this process ({}) → member(s) {} gradient, {} zeroth-order\n",
                 p.ok ? fmt::format("one backward{} peaks at {} ({:.2f} s, member {}), × {} headroom",
                                    c.roles.checkpoint ? " (checkpointed)" : "", mib(p.peak_bytes), p.seconds,
                                    candidates.front(), kBackwardHeadroom)
                      : p.why,
                 mib(budget), c.roles.memory.empty() ? "available memory" : "roles.memory",
                 chosen.empty() ? std::string("none") : fmt::format("{}", fmt::join(chosen, ", ")),
                 candidates.size() - chosen.size());
    }
  } catch (const std::exception& e) {
    mine = "!" + std::string(e.what());
  }
  const std::vector<std::string> parts = gather(mine);
  for (const std::string& part : parts)
    ZEROTH_CHECK(part.empty() || part[0] != '!', "roles.auto: {}", part.substr(part.empty() ? 0 : 1));
  for (const std::string& part : parts) {
    std::istringstream in(part);
    for (std::string id; std::getline(in, id, ',');) {
      const unsigned long m = std::stoul(id);
      ZEROTH_CHECK(m < members, "roles: a participant named member {} of {}", m, members);
      grad[m] = 1;
    }
  }
  if (say) {
    std::vector<uint32_t> g;
    for (uint32_t m = 0; m < members; ++m)
      if (grad[m]) g.push_back(m);
    if (!g.empty())
      fmt::print(stderr, "roles: member(s) {} grad (backward + exact projections, {} slots each{}), the other {} "
                 "zeroth-order ({} slots each)\n", fmt::join(g, ", "), c.roles.slots_of_grad(c.zo.q),
                 c.roles.checkpoint ? ", checkpointed" : "", members - g.size(), c.zo.q);
  }
  return grad;
}

RecordLayout record_layout(const TrainConfig& c, const std::vector<char>& grad) {
  RecordLayout l(uint32_t(c.run.members), uint32_t(c.zo.q), c.zo.exact_gradients);
  const int gs = c.roles.slots_of_grad(c.zo.q);
  if (gs != c.zo.q) {
    l.member_slots.assign(size_t(c.run.members), uint32_t(c.zo.q));
    for (size_t m = 0; m < grad.size() && m < l.member_slots.size(); ++m)
      if (grad[m]) l.member_slots[m] = uint32_t(gs);
  }
  return l;
}

}  // namespace zeroth::cli
