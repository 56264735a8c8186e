#include "launch/trainer.h"

#include <cstdint>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "core/backend.h"
#include "core/cuda_matmul.h"
#include "core/error.h"
#include "core/parallel.h"
#include "launch/roles.h"
#include "models/llama_cuda.h"
#include "models/loaders/llama_loader.h"
#include "models/loaders/tokenizer_loader.h"
#include "optim/lora_trainable.h"
#include "optim/update.h"

namespace zeroth::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

bool private_data(const TaskConfig& t) {
  for (const auto* p : {&t.train_path, &t.dev_path, &t.test_path})
    if (p->find("{rank}") != std::string::npos) return true;
  return false;
}

TaskConfig task_for_rank(TaskConfig t, uint32_t rank) {
  for (auto* p : {&t.train_path, &t.dev_path, &t.test_path})
    for (size_t at; (at = p->find("{rank}")) != std::string::npos;) p->replace(at, 6, std::to_string(rank));
  return t;
}

TrainContext make_train_context(const TrainConfig& c, const ProcessRole& role) {
  TrainContext ctx;
  ctx.config = c;
  ctx.dir.root = c.run.dir;
  // The cores this process may run on: mpirun binds ranks (to a core each when
  // np <= 2, by default), and a bound rank must not start more threads.
  const int machine = int(std::max(1u, std::thread::hardware_concurrency()));
  int usable = machine;
  if (cpu_set_t set; sched_getaffinity(0, sizeof set, &set) == 0) usable = std::max(1, CPU_COUNT(&set));
  // Local: the threads split among the members. MPI: among the node's ranks
  // (when unbound), each of which runs its hosted members one after another.
  const int total = c.run.threads > 0                             ? c.run.threads
                    : role.mpi && usable >= machine               ? std::max(1, machine / role.local_ranks)
                                                                  : usable;
  ctx.member_threads = role.mpi ? total : std::max(1, total / c.run.members);
  ctx.eval_threads = total;
  LoadOptions lo;
  lo.threads = total;
  lo.quantize_embeddings = c.model.quantize_embeddings;
  if (!c.model.quantize.empty()) lo.quantize = parse_dtype(c.model.quantize);
  auto weights = load_llama_weights(c.model.path, lo);
  if (!role.quiet)
    for (const auto& n : weights.notes) fmt::print(stderr, "note: {}\n", n);
  ctx.model_parameters = weights.parameter_count();
  ctx.model = std::make_unique<LlamaModel>(std::move(weights), ctx.member_threads);
  ctx.tokenizer = load_tokenizer(c.model.path, c.model.tokenizer, ctx.model->vocab_size());
  if (!private_data(c.task)) {
    ctx.task = make_task(c.task, *ctx.tokenizer);
  } else if (role.mpi) {
    ZEROTH_CHECK(uint32_t(c.run.members) == role.ranks, "{}: private per-rank data ({{rank}} in a task path) needs one "
                 "member per rank: run.members is {} but mpirun started {} ranks (set run.members={})", c.source,
                 c.run.members, role.ranks, role.ranks);
    ctx.task = make_task(task_for_rank(c.task, role.rank), *ctx.tokenizer);
  } else {
    for (int m = 0; m < c.run.members; ++m)
      ctx.member_tasks.push_back(make_task(task_for_rank(c.task, uint32_t(m)), *ctx.tokenizer));
    ctx.task = make_task(task_for_rank(c.task, 0), *ctx.tokenizer);  // the leader's: evaluations
  }
  ctx.base_hash = base_model_hash(c.model.path);
  return ctx;
}

void attach_cuda_model(TrainContext& ctx, const std::vector<uint32_t>& hosted, bool say) {
  const ModelSection& m = ctx.config.model;
  std::vector<uint32_t> on;
  for (const uint32_t h : hosted)
    if (m.on_cuda(h)) on.push_back(h);
  if (on.empty()) return;
  const std::string who = fmt::format("member{} {}", on.size() > 1 ? "s" : "", fmt::join(on, ", "));
  ZEROTH_CHECK(cuda_available(), "{}: model.device / model.cuda_members put {} on the GPU, but this process has "
               "none usable ({}): run them with model.device cpu", ctx.config.source, who, cuda_describe());
  const auto* llama = dynamic_cast<const LlamaModel*>(ctx.model.get());
  ZEROTH_CHECK(llama, "{}: GPU members need a llama-family model", ctx.config.source);
  LlamaCudaOptions o;
  o.precision = parse_gemm_precision(m.cuda_precision, "model.cuda_precision");
  auto gpu = std::make_unique<LlamaCuda>(*llama, o);
  if (say) fmt::print(stderr, "GPU {}: {}\n", who, gpu->describe());
  ctx.cuda_model = std::move(gpu);
}

nlohmann::json eval_json(const char* split, uint64_t step, const EvalResult& r) {
  json j = {{"event", "eval"}, {"split", split}, {"step", step}, {"loss", r.loss}, {"examples", r.examples}};
  if (r.accuracy >= 0) j["accuracy"] = r.accuracy;
  return j;
}

std::string eval_line(const char* what, const EvalResult& r) {
  return r.accuracy >= 0 ? fmt::format("{}: loss {:.4f}, accuracy {:.2f}% ({} examples)", what, r.loss,
                                       100.0 * r.accuracy, r.examples)
                         : fmt::format("{}: loss {:.4f} ({} examples)", what, r.loss, r.examples);
}

namespace {

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02d}:{:02d}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02d}", t / 60, t % 60);
}


}  // namespace

uint64_t catch_up(Replica& replica, const std::vector<StepEntry>& history, const RunDir* dir) {
  if (history.empty()) return replica.steps();
  if (dir && replica.snapshot_restores())
    if (auto snap = latest_snapshot(*dir, history.size()))
      replica.restore(snap->tensors, snap->step, snap->hash, dir->snapshot(snap->step));
  replica.replay(history);
  return replica.steps();
}

// Opens (resume) or creates the run directory and its ledger; returns the history.
std::unique_ptr<LedgerFile> prepare_run_dir(TrainContext& ctx, const TrainConfig& c, const std::string& theta0_hash) {
  namespace fs = std::filesystem;
  const RunDir& dir = ctx.dir;
  LedgerHeader header;
  header.run_seed = c.run.seed;
  header.base_hash = ctx.base_hash;
  header.trainable_hash = theta0_hash;
  header.config = c.to_yaml();
  if (fs::exists(dir.ledger())) {
    ZEROTH_CHECK(c.run.resume, "{} already holds a run: pass --resume to continue it, or choose another run.dir",
                 dir.root);
    auto ledger = std::make_unique<LedgerFile>(LedgerFile::open(dir.ledger()));
    if (ledger->dropped_bytes() > 0)
      fmt::print(stderr, "ledger: dropped a torn tail of {} bytes (an interrupted write)\n", ledger->dropped_bytes());
    const auto& h = ledger->header();
    ZEROTH_CHECK(h.base_hash == header.base_hash, "{}: the run was trained on a different base model (hash {} vs {})",
                 dir.ledger(), h.base_hash, header.base_hash);
    ZEROTH_CHECK(h.trainable_hash == header.trainable_hash && h.run_seed == header.run_seed,
                 "{}: the run started from a different initialization (seed or LoRA shape changed)", dir.ledger());
    // Whatever shapes the function or how entries are applied must not change
    // on resume: the ledger would no longer rebuild the model.
    std::vector<std::string> keep_path = {"model.path=" + c.model.path, "task.train=" + c.task.train_path};
    const TrainConfig was = parse_train_config(h.config, dir.ledger() + " (its header)", keep_path);
    auto same = [&](bool eq, const char* key) {
      ZEROTH_CHECK(eq, "{}: {} differs from the run being resumed; a resumed run must keep it (start a new run.dir "
                   "to change it)", c.source, key);
    };
    same(was.lora.rank == c.lora.rank && was.lora.alpha == c.lora.alpha && was.lora.targets == c.lora.targets, "lora");
    same(was.trainable.norms == c.trainable.norms && was.trainable.full == c.trainable.full &&
             was.trainable.sparse_density == c.trainable.sparse_density,
         "trainable");
    same(was.zo.distribution == c.zo.distribution, "zo.distribution");
    same(was.zo.redundancy == c.zo.redundancy, "zo.redundancy");
    same(was.zo.lisa_layers == c.zo.lisa_layers, "zo.lisa_layers");
    same(was.zo.directions.lozo_rank == c.zo.directions.lozo_rank &&
             was.zo.directions.lozo_period == c.zo.directions.lozo_period &&
             was.zo.directions.orthogonal_slots == c.zo.directions.orthogonal_slots,
         "zo.lozo_rank/lozo_period/orthogonal_slots");
    same(was.optimizer.rule == c.optimizer.rule, "optimizer.rule");
    same(was.optimizer.weight_decay == c.optimizer.weight_decay, "optimizer.weight_decay");
    same(was.optimizer.momentum == c.optimizer.momentum, "optimizer.momentum");
    same(was.optimizer.beta1 == c.optimizer.beta1 && was.optimizer.beta2 == c.optimizer.beta2 &&
             was.optimizer.adam_eps == c.optimizer.adam_eps && was.optimizer.horizon == c.optimizer.horizon,
         "optimizer.beta1/beta2/adam_eps/horizon");
    same(was.optimizer.muon_steps == c.optimizer.muon_steps, "optimizer.muon_steps");
    same(was.optimizer.allora_eta == c.optimizer.allora_eta, "optimizer.allora_eta");
    same(was.optimizer.grad_weight == c.optimizer.grad_weight, "optimizer.grad_weight");
    same(was.optimizer.hessian_smooth == c.optimizer.hessian_smooth, "optimizer.hessian_smooth");
    same(was.model.quantize == c.model.quantize && was.model.quantize_embeddings == c.model.quantize_embeddings,
         "model.quantize");
    ctx.history = ledger->entries();
    fmt::print(stderr, "resuming {} at step {}\n", dir.root, ctx.history.size());
    return ledger;
  }
  ZEROTH_CHECK(!c.run.resume, "--resume: {} holds no ledger to resume", dir.root);
  fs::create_directories(dir.root);
  std::ofstream(dir.config()) << header.config;
  return std::make_unique<LedgerFile>(LedgerFile::create(dir.ledger(), header));
}

std::optional<Snapshot> fo_resume_snapshot(const TrainContext& ctx) {
  const TrainConfig& c = ctx.config;
  if (c.mode != "fo" || !c.run.resume) return std::nullopt;
  auto snap = latest_snapshot(ctx.dir, UINT64_MAX);
  ZEROTH_CHECK(snap, "--resume: {} holds no snapshot; mode fo keeps θ and the AdamW moments only in snapshots "
               "(run.snapshot_every), so there is nothing to resume from", ctx.dir.snapshots());
  return snap;
}


MemberOutcome run_member(const TrainContext& ctx, Transport& tr) {
  if (ctx.config.mode == "fo") return run_member_fo(ctx, tr);
  const TrainConfig& c = ctx.config;
  const bool leader = tr.is_leader();
  const std::vector<uint32_t> hosted = tr.hosted();
  const uint32_t members = tr.layout().members;
  Replica replica(c.replica(), *ctx.model, ctx.member_threads);
  LoraTrainable& lora = replica.lora();
  const PerturbedLora theta(lora, c.zo.distribution, {Variant{}});  // θ itself, for evaluation
  // Per logical member: its gradient or JVP step ran out of memory (launch/roles.h).
  std::deque<bool> fallen_back(members, false);

  const uint64_t start = catch_up(replica, ctx.history, &ctx.dir);
  std::ofstream metrics;
  if (leader) metrics.open(ctx.dir.metrics(), std::ios::app);
  auto log_json = [&](const json& j) {
    if (leader) metrics << j.dump() << "\n" << std::flush;
  };
  const bool tty = leader && ::isatty(2);
  auto evaluate_dev = [&](uint64_t step, const char* label) {
    EvalResult r;
    if (leader && !ctx.task->examples(Split::Dev).empty()) {
      const ThreadsOverride all_cores(ctx.eval_threads);  // the others wait meanwhile
      r = evaluate(ctx.eval_model(), *ctx.task, Split::Dev, c.eval.batch_tokens, &theta);
      log_json(eval_json("dev", step, r));
      fmt::print(stderr, "{}{}\n", tty ? "\r\033[K" : "", eval_line(label, r));
    }
    tr.barrier();  // the others wait: every member leaves evaluation at the same step
    return r;
  };

  MemberOutcome out;
  EvalResult before;
  if (start == 0) before = evaluate_dev(0, "dev before training");
  const auto t_run = Clock::now();
  const uint64_t bytes_at_start = tr.bytes_sent(), records_at_start = tr.record_bytes_sent();
  double loss_ema = NAN;
  for (uint64_t t = start; t < uint64_t(c.run.steps); ++t) {
    const auto t0 = Clock::now();
    const float scale = replica.scale();
    const float lr = c.optimizer.lr_at(t);
    // This participant's members, one after another; their losses and token
    // counts travel with the loss exchange below, "member:loss:tokens;".
    std::vector<Record> mine;
    std::string my_losses;
    int64_t clipped = 0, dropped = 0;
    std::vector<MemberStepResult> results(hosted.size());
    {
      // Hosted members run side by side, `lanes` at a time, sharing this
      // participant's threads (small batches use one thread better than many);
      // each result is a function of its member alone, so the lanes do not
      // change a bit of it.
      const int threads = ctx.member_threads;
      const size_t lanes = std::min<size_t>(hosted.size(), size_t(threads));
      std::vector<std::string> errors(lanes);
      auto lane = [&](size_t l) {
        const ThreadsOverride share(std::max(1, threads / int(lanes)));
        try {
          for (size_t i = l; i < hosted.size(); i += lanes)
            results[i] = step_with_fallback(c, ctx.role_of(hosted[i]), fallen_back[hosted[i]],
                                            fmt::format("member {}", hosted[i]), ctx.model_of(hosted[i]),
                                            ctx.task_of(hosted[i]),
                                            lora, t, hosted[i], members, scale);
        } catch (const std::exception& e) {
          errors[l] = e.what();
        }
      };
      std::vector<std::thread> pool;
      for (size_t l = 1; l < lanes; ++l) pool.emplace_back(lane, l);
      lane(0);
      for (auto& th : pool) th.join();
      for (const auto& e : errors) ZEROTH_CHECK(e.empty(), "{}", e);
    }
    for (size_t i = 0; i < hosted.size(); ++i) {
      const uint32_t m = hosted[i];
      MemberStepResult& res = results[i];
      if (ctx.attack != Attack::None &&
          std::find(ctx.attackers.begin(), ctx.attackers.end(), m) != ctx.attackers.end())
        for (auto& r : res.records) r.code = attack_code(ctx.attack, r.code);
      mine.insert(mine.end(), res.records.begin(), res.records.end());
      my_losses += fmt::format("{}:{:.17g}:{};", m, res.loss, res.tokens);
      clipped += res.clipped;
      dropped += res.dropped;
    }
    StepEntry header;
    header.step = t;
    header.scale = scale;
    header.lr = lr;
    const auto t_comm = Clock::now();
    Commit commit = tr.exchange(header, mine, ctx.stop && ctx.stop->load());
    double comm_s = std::chrono::duration<double>(Clock::now() - t_comm).count();
    // Every participant filters the identical entry identically: the ledger
    // holds the result.
    const CommitFilterStats filtered = replica.commit_filter(commit.entry);
    replica.apply(commit.entry);
    if (leader && ctx.ledger) ctx.ledger->append(commit.entry, c.run.durable);
    ++out.steps_run;
    if (int64_t(tr.rank()) == ctx.corrupt_rank && int64_t(t) == ctx.corrupt_step) {
      fmt::print(stderr, "debug: corrupting θ on {} {} after step {} (--debug-corrupt)\n", tr.noun(), tr.rank(), t);
      lora.set().tensors().front().data[0] += 0.25f;
    }

    // Every member's loss, for the metrics (and a check that all are alive),
    // averaged in member order so the figure does not depend on the hosting.
    std::vector<double> member_loss(members, 0.0);
    int64_t tokens = 0;
    const auto t_losses = Clock::now();
    const auto all_losses = tr.allgather(my_losses);
    comm_s += std::chrono::duration<double>(Clock::now() - t_losses).count();
    for (const auto& part : all_losses)
      for (size_t at = 0; at < part.size();) {
        const size_t end = part.find(';', at), c1 = part.find(':', at), c2 = part.find(':', c1 + 1);
        member_loss.at(std::stoul(part.substr(at, c1 - at))) = std::stod(part.substr(c1 + 1, c2 - c1 - 1));
        tokens += std::stoll(part.substr(c2 + 1, end - c2 - 1));
        at = end + 1;
      }
    double mean_loss = 0;
    for (const double l : member_loss) mean_loss += l / double(members);
    loss_ema = std::isnan(loss_ema) ? mean_loss : 0.9 * loss_ema + 0.1 * mean_loss;

    if ((t + 1) % uint64_t(c.run.hash_every) == 0 || t + 1 == uint64_t(c.run.steps) || commit.stop) {
      const auto hashes = tr.allgather(lora.set().hash().hex());
      std::string differ;
      for (uint32_t r = 1; r < hashes.size(); ++r)
        if (hashes[r] != hashes[0]) differ += fmt::format("{}{} {} has {}", differ.empty() ? "" : "; ", tr.noun(), r,
                                                          hashes[r]);
      if (!differ.empty())
        throw CollectiveError(fmt::format("replicas diverged: after step {} (checked every {} steps), {} 0 has hash "
                                          "{}; {}. The run stops here; its ledger holds the steps so far.",
                                          t, c.run.hash_every, tr.noun(), hashes[0], differ));
    }
    const double step_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (leader) {
      double g2 = 0, gabs = 0;
      int ng = 0, grad_records = 0;
      double h_sum = 0;
      int nh = 0;
      for (const auto& r : commit.entry.records) {
        if (r.kind == RecordKind::Curvature) {  // hizoo's curvature codes are no gradients
          h_sum += commit.entry.exact ? r.value : decode_curvature(r.code);
          ++nh;
          continue;
        }
        grad_records += r.kind == RecordKind::Gradient;
        const float g = commit.entry.exact ? r.value : decode_gradient(r.code, commit.entry.scale);
        g2 += double(g) * g;
        gabs += std::abs(double(g));
        ++ng;
      }
      const uint64_t bytes = tr.record_bytes_sent() - records_at_start;
      json step_line = {{"event", "step"}, {"step", t}, {"loss", mean_loss}, {"lr", lr}, {"scale", scale},
                {"records", commit.entry.records.size()}, {"grad_records", grad_records}, {"g_rms", ng ? std::sqrt(g2 / ng) : 0.0},
                {"g_mean_abs", ng ? gabs / ng : 0.0}, {"clipped", clipped}, {"dropped", dropped},
                {"robust_clipped", filtered.robust.clipped}, {"robust_trimmed", filtered.robust.trimmed},
                {"screened", filtered.screened},
                {"record_bytes_per_member", double(bytes) / double(out.steps_run) / double(hosted.size())},
                {"step_seconds", step_s}, {"comm_seconds", comm_s},
                {"tokens_per_second", double(tokens) / step_s}};
      if (nh > 0) step_line["curvature_mean"] = h_sum / nh;  // hizoo: the step's mean decoded h
      log_json(step_line);
      const double elapsed = std::chrono::duration<double>(Clock::now() - t_run).count();
      const double eta = elapsed / double(out.steps_run) * double(uint64_t(c.run.steps) - t - 1);
      if (tty) {
        const int width = 30, done = int(double(t + 1) / double(c.run.steps) * width);
        fmt::print(stderr, "\r\033[K[{}{}] {}/{} loss {:.4f} {:.2f} s/step eta {}", std::string(size_t(done), '#'),
                   std::string(size_t(width - done), '.'), t + 1, c.run.steps, loss_ema, step_s, fmt_duration(eta));
      } else if ((t + 1) % uint64_t(c.run.log_every) == 0 || t == start) {
        fmt::print(stderr, "step {}/{} loss {:.4f} (avg {:.4f}) lr {:.3g} scale {:.3g} {:.2f} s/step eta {}\n", t + 1,
                   c.run.steps, mean_loss, loss_ema, lr, scale, step_s, fmt_duration(eta));
      }
    }
    if (leader && c.run.snapshot_every > 0 && (t + 1) % uint64_t(c.run.snapshot_every) == 0)
      write_snapshot(ctx.dir, t + 1, lora.set().hash().hex(), lora.set().snapshot());
    if (c.run.eval_every > 0 && (t + 1) % uint64_t(c.run.eval_every) == 0 && t + 1 < uint64_t(c.run.steps))
      evaluate_dev(t + 1, fmt::format("dev at step {}", t + 1).c_str());
    if (commit.stop) {
      if (leader) fmt::print(stderr, "{}stopping after step {} as asked; the ledger is intact\n", tty ? "\n" : "", t + 1);
      break;
    }
  }
  if (tty) fmt::print(stderr, "\n");
  out.steps_done = start + out.steps_run;
  out.final_hash = lora.set().hash().hex();
  out.bytes_sent = tr.bytes_sent() - bytes_at_start;
  out.record_bytes_sent = tr.record_bytes_sent() - records_at_start;
  out.hosted = hosted.size();

  // Final evaluation and summary (leader).
  const EvalResult after = evaluate_dev(out.steps_done, "dev after training");
  if (leader) {
    EvalResult test;
    if (!ctx.task->examples(Split::Test).empty()) {
      const ThreadsOverride all_cores(ctx.eval_threads);
      test = evaluate(ctx.eval_model(), *ctx.task, Split::Test, c.eval.batch_tokens, &theta);
      log_json(eval_json("test", out.steps_done, test));
      fmt::print(stderr, "{}\n", eval_line("test after training", test));
    }
    if (out.steps_run > 0 && c.run.snapshot_every > 0)
      write_snapshot(ctx.dir, out.steps_done, out.final_hash, lora.set().snapshot());
    json s = {{"steps", out.steps_done}, {"members", members}, {"final_hash", out.final_hash},
              {"participants", tr.ranks()}, {"transport", tr.describe()},
              {"record_bytes_per_member_per_step",
               out.steps_run ? double(out.record_bytes_sent) / double(out.steps_run) / double(hosted.size()) : 0.0},
              {"all_bytes_per_member_per_step",
               out.steps_run ? double(out.bytes_sent) / double(out.steps_run) / double(hosted.size()) : 0.0},
              {"trainable_parameters", lora.set().size()}, {"model_parameters", ctx.model_parameters},
              {"seconds", std::chrono::duration<double>(Clock::now() - t_run).count()}};
    if (start == 0) s["dev_before"] = eval_json("dev", 0, before);
    s["dev_after"] = eval_json("dev", out.steps_done, after);
    if (test.examples > 0) s["test_after"] = eval_json("test", out.steps_done, test);
    if (ctx.cuda_model) {
      // The leader's GPU, as the driver counts it at the end (the model's
      // buffers are kept at their largest, so this is the run's peak).
      const CudaMemoryInfo m = cuda_memory_info();
      s["gpu_memory_used_gib"] = double(m.used()) / double(1ull << 30);
      s["gpu_memory_total_gib"] = double(m.total) / double(1ull << 30);
    }
    std::ofstream(ctx.dir.summary()) << s.dump(2) << "\n";
  }
  tr.barrier();
  return out;
}

}  // namespace zeroth::cli
