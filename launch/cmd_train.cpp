// `zeroth train [CONFIG]`: a zeroth-order finetuning run. Without a config it
// runs the embedded default (configs/default.yaml, compiled in).
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <thread>

#include "comm/local_transport.h"
#include "comm/mpi_transport.h"
#ifdef ZEROTH_HAVE_NCCL
#include "comm/nccl_transport.h"
#endif
#include "core/backend.h"
#include "core/hash.h"
#include "core/error.h"
#include "launch/commands.h"
#include "launch/roles.h"
#include "launch/trainer.h"

namespace zeroth::cli {

extern const char* const kDefaultConfigYaml;  // configs/default.yaml, embedded at build time

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C: leave at once (the ledger stays recoverable)
}

struct TrainOptions {
  std::string config;
  std::vector<std::string> sets;
  std::string resume;
  std::string corrupt;  // RANK:STEP
  std::string attack;   // KIND:M,M,...
  std::string transport = "mpi";  // under mpirun: mpi, or nccl (records over NCCL, GPU jobs)
};

TrainConfig load_config(const TrainOptions& opt) {
  std::vector<std::string> sets = opt.sets;
  std::string path = opt.config;
  if (!opt.resume.empty()) {
    sets.push_back("run.dir=" + opt.resume);
    sets.push_back("run.resume=true");
    if (path.empty()) path = opt.resume + "/config.yaml";
  }
  return path.empty() ? parse_train_config(kDefaultConfigYaml, "<embedded default>", sets)
                      : load_train_config(path, sets);
}

void parse_attack_spec(const std::string& spec, TrainContext& ctx) {
  if (spec.empty()) return;
  const size_t colon = spec.find(':');
  ZEROTH_CHECK(colon != std::string::npos, "--debug-attack {}: expected KIND:MEMBERS, e.g. huge:0,1,2", spec);
  ctx.attack = parse_attack(spec.substr(0, colon));
  const std::string list = spec.substr(colon + 1);
  for (size_t at = 0; at < list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    try {
      ctx.attackers.push_back(uint32_t(std::stoul(list.substr(at, comma - at))));
    } catch (const std::exception&) {
      throw Error(fmt::format("--debug-attack {}: \"{}\" is not a member number", spec, list.substr(at, comma - at)));
    }
    at = comma + 1;
  }
  ZEROTH_CHECK(!ctx.attackers.empty(), "--debug-attack {}: name at least one member", spec);
}

void parse_corrupt(const std::string& spec, TrainContext& ctx) {
  if (spec.empty()) return;
  const size_t colon = spec.find(':');
  try {
    ZEROTH_CHECK(colon != std::string::npos, "");
    ctx.corrupt_rank = std::stoll(spec.substr(0, colon));
    ctx.corrupt_step = std::stoll(spec.substr(colon + 1));
  } catch (const std::exception&) {
    throw Error(fmt::format("--debug-corrupt {}: expected RANK:STEP, e.g. 1:5", spec));
  }
}

// θ_0's hash, as every member will compute it; the leader says what trains.
std::string theta0_hash(const TrainContext& ctx, bool say) {
  const TrainConfig& c = ctx.config;
  const Replica probe(c.replica(), *ctx.model, 1);
  if (say)
    fmt::print(stderr, "trainable: {}{}: {} parameters\n",
               c.trainable.full ? "every weight: embedding, projections, output (full)"
                                : fmt::format("LoRA r {} alpha {} on {} projections", c.lora.rank, c.lora.alpha,
                                              c.lora.targets.size()),
               c.trainable.norms ? " and the norms" : "", probe.theta().size());
  return probe.hash();
}

// The closing lines every run prints (leader).
void print_outcome(const TrainConfig& c, const TrainContext& ctx, const MemberOutcome& o, bool agree,
                   uint32_t participants, const char* noun) {
  fmt::print("steps: {} ({} run now)\n", o.steps_done, o.steps_run);
  const double steps = double(std::max<uint64_t>(1, o.steps_run)) * double(o.hosted);
  const int gs = c.roles.slots_of_grad(c.zo.q);
  bool any_grad = false;
  for (uint32_t m = 0; m < uint32_t(c.run.members); ++m) any_grad = any_grad || ctx.role_of(m) != MemberRole::Zo;
  fmt::print("bytes per member per step: {:.1f} for records (q = {} slot(s){}: {} byte(s) each + a {}-byte header); "
             "{:.1f} with the loss and hash exchanges\n",
             double(o.record_bytes_sent) / steps, c.zo.q,
             any_grad && gs != c.zo.q ? fmt::format(", {} per gradient/JVP member", gs) : "",
             (c.zo.exact_gradients ? 4 : 1) * (c.curvature_records() ? 2 : 1),
             kMemberRecordsHeader, double(o.bytes_sent) / steps);
  const std::string who = uint32_t(c.run.members) == participants && std::string(noun) == "member"
                              ? fmt::format("{} members", c.run.members)
                              : fmt::format("{} {}s, {} members", participants, noun, c.run.members);
  fmt::print("replica hashes: {} ({}, {})\n", agree ? "all equal" : "DIFFER", who, o.final_hash);
  fmt::print("run directory: {}\n", ctx.dir.root);
}

// Every member a thread of this process.
int train_local(const TrainOptions& opt) {
  ZEROTH_CHECK(opt.transport == "mpi", "--transport {}: the NCCL transport joins the ranks of an mpirun job "
               "(mpirun -np N zeroth train ... --transport nccl); this process was not started by mpirun",
               opt.transport);
  const TrainConfig c = load_config(opt);
  fmt::print(stderr, "zeroth train: {} ({} steps, {} members)\n", c.source, c.run.steps, c.run.members);
  TrainContext ctx = make_train_context(c);
  {
    std::vector<uint32_t> all(size_t(c.run.members));
    for (uint32_t m = 0; m < all.size(); ++m) all[m] = m;
    attach_cuda_model(ctx, all, true);  // GPU members: before the run directory is touched
  }
  parse_corrupt(opt.corrupt, ctx);
  parse_attack_spec(opt.attack, ctx);
  fmt::print(stderr, "task: {}{}\n", ctx.task->describe(),
             ctx.member_tasks.empty() ? "" : " (member 0's; each member reads its own data)");
  const std::string theta0 = theta0_hash(ctx, true);
  auto ledger = prepare_run_dir(ctx, c, theta0);
  ctx.fo_resume = fo_resume_snapshot(ctx);
  ctx.ledger = ledger.get();
  ctx.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);

  std::vector<uint32_t> all_members(size_t(c.run.members));
  for (uint32_t m = 0; m < all_members.size(); ++m) all_members[m] = m;
  ctx.member_roles = resolve_roles(ctx, all_members, uint32_t(c.run.members), 1, true,
                                   [](const std::string& s) { return std::vector<std::string>{s}; });
  const RecordLayout layout = record_layout(c, ctx.member_roles);
  auto group = std::make_shared<LocalGroup>(uint32_t(c.run.members));
  std::vector<MemberOutcome> outcomes(size_t(c.run.members));
  std::vector<std::string> errors(size_t(c.run.members));
  std::vector<std::thread> threads;
  for (int m = 0; m < c.run.members; ++m)
    threads.emplace_back([&, m] {
      LocalTransport tr(group, uint32_t(m));
      try {
        tr.set_layout(layout);
        outcomes[size_t(m)] = run_member(ctx, tr);
      } catch (const std::exception& e) {
        errors[size_t(m)] = e.what();
        tr.abort(e.what());
      }
    });
  for (auto& t : threads) t.join();
  std::signal(SIGINT, SIG_DFL);
  for (const auto& e : errors)
    if (!e.empty() && e.rfind("stopping: ", 0) != 0) fail("{}", e);
  for (const auto& e : errors)
    if (!e.empty()) fail("{}", e);

  bool agree = true;
  for (const auto& x : outcomes) agree = agree && x.final_hash == outcomes[0].final_hash;
  print_outcome(c, ctx, outcomes[0], agree, uint32_t(c.run.members), "member");
  return agree ? 0 : 3;
}

// One rank of an mpirun job. Set-up errors of any rank are gathered, so the
// job ends with one clear message instead of a hang; a failure during
// training ends the job (no ULFM) and the run resumes from its ledger.
int train_mpi(const TrainOptions& opt) {
  MpiSession session(nullptr, nullptr);
  MpiTransport tr(session);
  const bool leader = tr.is_leader();
  // --transport nccl: the step exchanges go over NCCL between the ranks' GPUs
  // (set-up, the history and the final hashes stay on MPI). Made first, so
  // each rank's device is chosen before any GPU member's model is uploaded.
  Transport* run_tr = &tr;
#ifdef ZEROTH_HAVE_NCCL
  std::unique_ptr<NcclTransport> nccl;
  if (opt.transport == "nccl") {
    try {
      nccl = std::make_unique<NcclTransport>(tr);  // collective: throws on every rank alike
    } catch (const std::exception& e) {
      // Every rank says why: a failure of one rank's NCCL init alone would
      // otherwise show only as the others' deadline.
      if (leader) fmt::print(stderr, "zeroth: error: --transport nccl: {}\n", e.what());
      else fmt::print(stderr, "zeroth: error: rank {}: --transport nccl: {}\n", tr.rank(), e.what());
      return 1;
    }
    run_tr = nccl.get();
    if (leader) fmt::print(stderr, "transport: {}\n", nccl->describe());
  }
#else
  if (opt.transport == "nccl") {
    if (leader)
      fmt::print(stderr, "zeroth: error: --transport nccl: this build has no NCCL transport (it needs the CUDA "
                         "backend and NCCL >= 2.14 when CMake configures; use --transport mpi)\n");
    return 1;
  }
#endif
  TrainConfig c;
  TrainContext ctx;
  std::unique_ptr<LedgerFile> ledger;
  std::string status, theta0;
  try {
    c = load_config(opt);
    if (leader)
      fmt::print(stderr, "zeroth train: {} ({} steps, {} members on {} MPI ranks)\n", c.source, c.run.steps,
                 c.run.members, tr.ranks());
    ZEROTH_CHECK(uint32_t(c.run.members) >= tr.ranks(), "{}: run.members is {} but mpirun started {} ranks; every rank "
                 "hosts at least one member (set run.members to {} or a multiple of it; the members, not the ranks, "
                 "fix which samples and perturbations each step uses)", c.source, c.run.members, tr.ranks(),
                 tr.ranks());
    ProcessRole role;
    role.mpi = true;
    role.rank = tr.rank();
    role.ranks = tr.ranks();
    role.local_ranks = mpi_local_ranks();
    role.quiet = !leader;
    ctx = make_train_context(c, role);
    parse_corrupt(opt.corrupt, ctx);
    parse_attack_spec(opt.attack, ctx);
    tr.set_layout({uint32_t(c.run.members), uint32_t(c.zo.q), c.zo.exact_gradients});
    // GPU members: before the run directory is touched. Over MPI each rank of a
    // node takes its own GPU (node-local rank mod GPUs), as the NCCL transport does.
    if (run_tr == &tr && c.model.any_cuda() && cuda_device_count() > 1)
      cuda_set_device(tr.local_rank() % cuda_device_count());
    attach_cuda_model(ctx, tr.hosted(), true);
    if (leader) fmt::print(stderr, "task: {}{}\n", ctx.task->describe(), private_data(c.task) ? " (rank 0's)" : "");
    theta0 = theta0_hash(ctx, leader);
    // What every rank must agree on before the first step.
    status = fmt::format("ok base {} theta0 {} config {}", ctx.base_hash, theta0,
                         hash_bytes(c.to_yaml().data(), c.to_yaml().size()).hex());
  } catch (const std::exception& e) {
    status = std::string("error ") + e.what();
  }
  const auto all = tr.allgather(status);
  // Errors, grouped by message: "ranks 1, 3: ...".
  std::vector<std::pair<std::string, std::string>> errors;  // message, ranks
  for (uint32_t r = 0; r < all.size(); ++r) {
    std::string why;
    if (all[r].rfind("error ", 0) == 0) why = all[r].substr(6);
    else if (all[0].rfind("ok ", 0) == 0 && all[r] != all[0])
      why = fmt::format("it loaded a different model, initialization or config than rank 0 ({} vs {})",
                        all[r].substr(3), all[0].substr(3));
    if (why.empty()) continue;
    auto it = std::find_if(errors.begin(), errors.end(), [&](const auto& x) { return x.first == why; });
    if (it == errors.end()) errors.emplace_back(why, std::to_string(r));
    else it->second += ", " + std::to_string(r);
  }
  if (!errors.empty()) {
    if (leader)
      for (const auto& [why, ranks] : errors)
        fmt::print(stderr, "zeroth: error: {}: {}\n",
                   errors.size() == 1 && std::count(ranks.begin(), ranks.end(), ',') + 1 == int(tr.ranks()) &&
                           tr.ranks() > 1
                       ? fmt::format("all {} ranks", tr.ranks())
                       : fmt::format("rank{} {} of {}", ranks.find(',') != std::string::npos ? "s" : "", ranks,
                                     tr.ranks()),
                   why);
    return 1;
  }
  // Only once every rank is ready does rank 0 open (or create) the run
  // directory: a rank that cannot run leaves no half-made run behind.
  {
    std::string why;
    if (leader) try {
      ledger = prepare_run_dir(ctx, c, theta0);
      ctx.fo_resume = fo_resume_snapshot(ctx);
    } catch (const std::exception& e) {
      why = e.what();
    }
    why = tr.broadcast(why);
    if (!why.empty()) {
      if (leader) fmt::print(stderr, "zeroth: error: {}\n", why);
      return 1;
    }
  }
  // The history lives in rank 0's run directory; the others get it from rank 0,
  // so they need no shared file system.
  {
    std::string packed;
    if (leader)
      for (const auto& e : ctx.history) {
        const auto b = e.serialize();
        const uint32_t n = uint32_t(b.size());
        packed.append(reinterpret_cast<const char*>(&n), 4).append(b.begin(), b.end());
      }
    packed = tr.broadcast(packed);
    if (!leader) {
      ctx.history.clear();
      for (size_t at = 0; at + 4 <= packed.size();) {
        uint32_t n;
        std::memcpy(&n, packed.data() + at, 4);
        ctx.history.push_back(StepEntry::deserialize(reinterpret_cast<const uint8_t*>(packed.data()) + at + 4, n));
        at += 4 + n;
      }
      ctx.dir.root = c.run.dir;  // snapshots are used when this rank sees them, else the ledger is replayed
    }
  }
  // Resuming mode fo: rank 0's snapshot file, byte for byte, to every rank.
  if (c.mode == "fo" && c.run.resume) {
    std::string bytes;
    if (leader) {
      std::ifstream in(ctx.dir.snapshot(ctx.fo_resume->step), std::ios::binary);
      bytes = std::string(8, '\0') + std::string(std::istreambuf_iterator<char>(in), {});
      const uint64_t step = ctx.fo_resume->step;
      std::memcpy(bytes.data(), &step, 8);
    }
    bytes = tr.broadcast(bytes);
    if (!leader) {
      uint64_t step = 0;
      std::memcpy(&step, bytes.data(), 8);
      ctx.fo_resume = snapshot_from_bytes(
          std::span(reinterpret_cast<const uint8_t*>(bytes.data()) + 8, bytes.size() - 8), step, "rank 0");
    }
  }
  // Roles: every rank decides for the members it hosts, the decisions are
  // gathered, and the record layout follows (the same on every rank).
  try {
    ctx.member_roles = resolve_roles(ctx, tr.hosted(), uint32_t(c.run.members), mpi_local_ranks(), leader,
                                     [&](const std::string& s) { return tr.allgather(s); });
    tr.set_layout(record_layout(c, ctx.member_roles));
    if (run_tr != &tr) run_tr->set_layout(record_layout(c, ctx.member_roles));
  } catch (const std::exception& e) {  // the same message on every rank
    if (leader) fmt::print(stderr, "zeroth: error: {}\n", e.what());
    return 1;
  }
  ctx.ledger = ledger.get();
  ctx.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  MemberOutcome o;
  try {
    o = run_member(ctx, *run_tr);
  } catch (const CollectiveError& e) {
    if (leader) fmt::print(stderr, "zeroth: error: {}\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    if (run_tr != &tr) run_tr->abort(e.what());
    tr.abort(e.what());
  }
  const auto hashes = tr.allgather(o.final_hash);
  bool agree = true;
  for (const auto& h : hashes) agree = agree && h == hashes[0];
  if (leader) print_outcome(c, ctx, o, agree, tr.ranks(), "rank");
  return agree ? 0 : 3;
}

}  // namespace

Runner add_train(CLI::App& app) {
  auto opt = std::make_shared<TrainOptions>();
  auto* sub = app.add_subcommand("train", "Zeroth-order finetuning (MeZO/SPSA, one byte per perturbation of "
                                          "zo.samples examples); without CONFIG it runs the embedded default. Under "
                                          "mpirun every rank hosts members of the run (run.members of them in all)");
  sub->add_option("config", opt->config, "YAML recipe (see configs/)");
  sub->add_option("--set", opt->sets, "Override a config key, e.g. --set optimizer.lr=1e-4 (repeatable)");
  sub->add_option("--transport", opt->transport, "Under mpirun: mpi (default), or nccl: the step exchanges over NCCL "
                  "between the ranks' GPUs (one rank per GPU; with model.device cuda), MPI only to set up")
      ->check(CLI::IsMember({"mpi", "nccl"}))
      ->capture_default_str();
  sub->add_option("--resume", opt->resume, "Continue the run in this directory (its config.yaml, unless CONFIG is given)");
  sub->add_option("--debug-corrupt", opt->corrupt,
                  "Debugging: change θ on member/rank RANK after step STEP, to see the replica hash check stop the "
                  "run (RANK:STEP)");
  sub->add_option("--debug-attack", opt->attack,
                  "Attack suite: members M,M,... poison their codes (KIND:M,M,...; KIND huge, sign or bias); "
                  "see robust.rule");
  return [opt] { return launched_by_mpi() ? train_mpi(*opt) : train_local(*opt); };
}

}  // namespace zeroth::cli
