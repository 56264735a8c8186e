#include "launch/roles.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cmath>
#include <malloc.h>
#include <map>
#include <new>
#include <sstream>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/sysmem.h"
#include "optim/grad_step.h"
#include "optim/jvp_step.h"
#include "optim/lora_trainable.h"
#include "optim/replica.h"

namespace zeroth::cli {

namespace {
std::string mib(int64_t bytes) { return fmt::format("{:.0f} MiB", double(bytes) / 1048576.0); }
}  // namespace

MemberStepResult step_in_role(const TrainConfig& c, MemberRole role, const CausalLM& model, const Task& task,
                              const LoraTrainable& lora, uint64_t step, uint32_t member, uint32_t members,
                              float codec_scale, uint32_t lane) {
  ZoConfig zo = c.zo;
  if (role == MemberRole::Zo)
    return zo_member_step(model, task, lora, zo, c.run.seed, c.task.data_seed, step, member, members, codec_scale,
                          lane);
  zo.q = c.roles.slots_of_grad(c.zo.q);  // one backward (or forward-mode pass) pays for every slot
  if (role == MemberRole::Jvp)
    return jvp_member_step(model, task, lora, zo, JvpConfig{c.roles.jvp_directions}, c.run.seed, c.task.data_seed,
                           step, member, members, codec_scale, lane);
  return grad_member_step(model, task, lora, zo, GradConfig{c.roles.checkpoint}, c.run.seed, c.task.data_seed, step,
                          member, members, codec_scale, lane);
}

MemberStepResult step_with_fallback(const TrainConfig& c, MemberRole role, bool& fallen_back, const std::string& who,
                                    const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                    uint64_t step, uint32_t member, uint32_t members, float codec_scale,
                                    uint32_t lane) {
  if (role != MemberRole::Zo && !fallen_back) {
    try {
      return step_in_role(c, role, model, task, lora, step, member, members, codec_scale, lane);
    } catch (const std::bad_alloc&) {
      fallen_back = true;
      ::malloc_trim(0);  // what the failed step held goes back before the ZO step runs
      fmt::print(stderr, "{}: out of memory in the {} at step {}; zeroth-order steps from now on ({})\n", who,
                 role == MemberRole::Jvp ? "forward-mode pass" : "backward pass", step,
                 role == MemberRole::Jvp ? "a smaller roles.jvp_directions keeps it a JVP member"
                                         : "roles.checkpoint: true, or fewer zo.samples, keeps it a gradient member");
    }
  }
  // ZO differences; a fallen-back member fills as many of its role's slots as zo.q.
  ZoConfig zo = c.zo;
  if (role != MemberRole::Zo) zo.q = std::min(c.zo.q, c.roles.slots_of_grad(c.zo.q));
  return zo_member_step(model, task, lora, zo, c.run.seed, c.task.data_seed, step, member, members, codec_scale, lane);
}

RoleProbe probe_role(const TrainContext& ctx, MemberRole role, uint32_t member, uint32_t members) {
  const TrainConfig& c = ctx.config;
  RoleProbe out;
  Replica replica(c.replica(), *ctx.model, 1);  // θ_0
  LoraTrainable& lora = replica.lora();
  // Freed heap memory still counts as resident until it goes back to the
  // kernel; a step that reuses it would not raise the peak. Return it first.
  ::malloc_trim(0);
  reset_peak_rss();
  const ProcessMemory before = process_memory();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    step_in_role(c, role, *ctx.model, ctx.task_of(member), lora, 0, member, members, 1.0f);
    out.ok = true;
  } catch (const std::bad_alloc&) {
    out.why = fmt::format("out of memory in the probe {}", role == MemberRole::Jvp ? "forward-mode pass" : "backward");
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.peak_bytes = std::max<int64_t>(0, process_memory().peak - before.rss);
  return out;
}

int members_that_fit(int64_t budget, int64_t peak) {
  if (budget <= 0) return 0;
  // At least kMinMemberBytes each: a probe whose memory the allocator already
  // held can measure ~0.
  const double each = std::max(double(kMinMemberBytes), double(peak)) * kRoleHeadroom;
  return int(std::min(1e6, std::floor(double(budget) / each)));
}

int64_t role_memory_budget(const TrainConfig& c, int local_ranks) {
  if (!c.roles.memory.empty()) return parse_byte_size(c.roles.memory, "roles.memory");
  return available_memory() / std::max(1, local_ranks);
}

AutoRole choose_auto_role(const TrainContext& ctx, uint32_t member, uint32_t members, int64_t budget,
                          const std::string& who) {
  const TrainConfig& c = ctx.config;
  for (const MemberRole role : {MemberRole::Grad, MemberRole::Jvp}) {
    const RoleProbe p = probe_role(ctx, role, member, members);
    const int fit = p.ok ? members_that_fit(budget, p.peak_bytes) : 0;
    fmt::print(stderr, "{}: {}; {} {}: {}\n", who,
               p.ok ? fmt::format("one {}{} peaks at {} ({:.2f} s), × {} headroom",
                                  role == MemberRole::Jvp ? "forward-mode pass" : "backward",
                                  role == MemberRole::Grad && c.roles.checkpoint ? " (checkpointed)" : "",
                                  mib(p.peak_bytes), p.seconds, kRoleHeadroom)
                    : p.why,
               mib(budget), c.roles.memory.empty() ? "available" : "by roles.memory",
               fit > 0 ? fmt::format("room for {} {} member(s)", fit, member_role_name(role))
                       : fmt::format("no room for a {} member", member_role_name(role)));
    if (fit > 0) return {role, fit};
  }
  return {MemberRole::Zo, 0};
}

std::vector<MemberRole> resolve_roles(const TrainContext& ctx, const std::vector<uint32_t>& hosted, uint32_t members,
                                      int local_ranks, bool say,
                                      const std::function<std::vector<std::string>(const std::string&)>& gather) {
  const TrainConfig& c = ctx.config;
  std::vector<MemberRole> roles(members, MemberRole::Zo);
  for (uint32_t m = 0; m < members; ++m) roles[m] = c.roles.role_of(m);
  // This participant's auto decisions, "m:r,m:r,", or "!why": every
  // participant then fails with the same message instead of leaving the
  // others waiting.
  std::string mine;
  if (c.roles.auto_roles) try {
    std::vector<uint32_t> candidates;
    for (const uint32_t m : hosted)  // GPU members stay zeroth-order (no CUDA backward yet)
      if (roles[m] == MemberRole::Zo && !c.model.on_cuda(m)) candidates.push_back(m);
    if (!candidates.empty()) {
      // The configured members' share comes first: the budget is what is left
      // after them (each at the measured peak of its own role).
      int64_t budget = role_memory_budget(c, local_ranks);
      std::map<MemberRole, int64_t> peak;  // one probe per configured role
      for (const uint32_t m : hosted)
        if (roles[m] != MemberRole::Zo) {
          if (!peak.count(roles[m])) peak[roles[m]] = probe_role(ctx, roles[m], m, members).peak_bytes;
          budget -= int64_t(double(std::max(kMinMemberBytes, peak[roles[m]])) * kRoleHeadroom);
        }
      const AutoRole a = choose_auto_role(ctx, candidates.front(), members, budget, "roles.auto");
      const size_t n = std::min<size_t>(candidates.size(), size_t(a.fit));
      for (size_t i = 0; i < n; ++i) mine += fmt::format("{}:{},", candidates[i], int(a.role));
      fmt::print(stderr, "roles.auto: member(s) {} {}, {} zeroth-order\n",
                 n ? fmt::format("{}", fmt::join(candidates.begin(), candidates.begin() + std::ptrdiff_t(n), ", "))
                   : std::string("none"),
                 n ? member_role_name(a.role) : "get a role", candidates.size() - n);
    }
  } catch (const std::exception& e) {
    mine = "!" + std::string(e.what());
  }
  const std::vector<std::string> parts = gather(mine);
  for (const std::string& part : parts)
    ZEROTH_CHECK(part.empty() || part[0] != '!', "roles.auto: {}", part.substr(part.empty() ? 0 : 1));
  for (const std::string& part : parts) {
    std::istringstream in(part);
    for (std::string item; std::getline(in, item, ',');) {
      unsigned long m = 0, r = 0;
      ZEROTH_CHECK(std::sscanf(item.c_str(), "%lu:%lu", &m, &r) == 2 && m < members && r <= 2,
                   "roles: a participant sent \"{}\"", item);
      roles[m] = MemberRole(r);
    }
  }
  if (say) {
    std::vector<uint32_t> by[3];
    for (uint32_t m = 0; m < members; ++m) by[int(roles[m])].push_back(m);
    if (!by[1].empty() || !by[2].empty())
      fmt::print(stderr, "roles: {}{}{} zeroth-order ({} slots each)\n",
                 by[1].empty() ? "" : fmt::format("member(s) {} grad (backward + exact projections, {} slots each{}), ",
                                                  fmt::join(by[1], ", "), c.roles.slots_of_grad(c.zo.q),
                                                  c.roles.checkpoint ? ", checkpointed" : ""),
                 by[2].empty() ? "" : fmt::format("member(s) {} jvp (forward-mode exact projections, {} slots each), ",
                                                  fmt::join(by[2], ", "), c.roles.slots_of_grad(c.zo.q)),
                 by[0].size(), c.zo.q);
  }
  return roles;
}

RecordLayout record_layout(const TrainConfig& c, const std::vector<MemberRole>& roles) {
  RecordLayout l(uint32_t(c.run.members), uint32_t(c.zo.q), c.zo.exact_gradients);
  l.curvature = c.curvature_records();
  const int gs = c.roles.slots_of_grad(c.zo.q);
  if (gs != c.zo.q) {
    l.member_slots.assign(size_t(c.run.members), uint32_t(c.zo.q));
    for (size_t m = 0; m < roles.size() && m < l.member_slots.size(); ++m)
      if (roles[m] != MemberRole::Zo) l.member_slots[m] = uint32_t(gs);
  }
  return l;
}

}  // namespace zeroth::cli
