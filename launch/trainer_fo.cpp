// mode: fo — data-parallel first-order LoRA finetuning. Every member
// backpropagates on its own samples (the draws a ZO member of that id would
// make), the participants allgather their members' gradients (4 bytes per
// trainable parameter per member: this mode is not the one-byte protocol), and
// every participant sums them in member order, so all replicas apply the same
// AdamW update to the same bits. The ledger property does not hold here: the
// ledger stays empty, and θ plus the AdamW moments live in the snapshots, from
// which a run resumes (ctx.fo_resume): the steps after it draw the same samples
// and learning rates, so a resumed run ends on the uninterrupted run's bits.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/parallel.h"
#include "launch/trainer.h"
#include "models/tasks/task_gradient.h"
#include "optim/adamw.h"
#include "optim/grad_step.h"

namespace zeroth::cli {

namespace {
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

template <typename T>
void put(std::string& s, const T& v) { s.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
template <typename T>
T take(const std::string& s, size_t& at) {
  ZEROTH_CHECK(at + sizeof(T) <= s.size(), "mode fo: a participant's gradient message is truncated");
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  at += sizeof(T);
  return v;
}
}  // namespace

MemberOutcome run_member_fo(const TrainContext& ctx, Transport& tr) {
  const TrainConfig& c = ctx.config;
  const bool leader = tr.is_leader();
  const std::vector<uint32_t> hosted = tr.hosted();
  const uint32_t members = tr.layout().members;
  ZEROTH_CHECK(ctx.history.empty(), "{}: mode fo cannot resume from a ledger of zeroth-order steps (its steps are "
               "not in it); start a new run.dir", c.source);
  // θ_0 as every mode makes it; AdamW moves θ here, outside the ledger.
  Replica replica(c.replica(), *ctx.model, ctx.member_threads);
  LoraTrainable& lora = replica.lora();
  AdamW opt(c.fo, lora.set());
  uint64_t start = 0;
  if (ctx.fo_resume) {
    const Snapshot& snap = *ctx.fo_resume;
    const std::string source = fmt::format("{} (snapshot of step {})", ctx.dir.snapshot(snap.step), snap.step);
    TensorList theta_part, adam_part;
    for (const NamedTensor& nt : snap.tensors)
      (nt.name.rfind("adamw.", 0) == 0 ? adam_part : theta_part).push_back({nt.name, nt.tensor});
    lora.set().restore(theta_part, source);
    opt.restore(adam_part, source);
    ZEROTH_CHECK(lora.set().hash().hex() == snap.hash, "{}: θ's hash {} is not the snapshot's {}", source,
                 lora.set().hash().hex(), snap.hash);
    ZEROTH_CHECK(opt.steps() == snap.step, "{}: the AdamW state counts {} steps, the snapshot is of step {}", source,
                 opt.steps(), snap.step);
    ZEROTH_CHECK(snap.step <= uint64_t(c.run.steps), "{}: the run is already past run.steps = {}", source, c.run.steps);
    start = snap.step;
    if (leader) fmt::print(stderr, "mode fo: resuming at step {} from {}\n", start, ctx.dir.snapshot(start));
  }
  const PerturbedLora theta(lora, c.zo.distribution, {Variant{}});
  const size_t P = size_t(lora.set().size());
  std::ofstream metrics;
  if (leader) metrics.open(ctx.dir.metrics(), std::ios::app);
  auto evaluate_on = [&](Split split, const char* name, uint64_t step) {
    EvalResult r;
    if (leader && !ctx.task->examples(split).empty()) {
      const ThreadsOverride all_cores(ctx.eval_threads);
      r = evaluate(*ctx.model, *ctx.task, split, c.eval.batch_tokens, &theta);
      metrics << eval_json(name, step, r).dump() << "\n" << std::flush;
      fmt::print(stderr, "{}\n", eval_line(fmt::format("{} at step {}", name, step).c_str(), r));
    }
    return r;
  };
  auto evaluate_dev = [&](uint64_t step) {
    const EvalResult r = evaluate_on(Split::Dev, "dev", step);
    tr.barrier();  // the others wait: every member leaves evaluation at the same step
    return r;
  };
  if (leader)
    fmt::print(stderr, "mode fo: every member backpropagates; gradients are reduced in member order and AdamW "
               "updates θ (no ledger steps: snapshots carry θ and the moments)\n");
  MemberOutcome out;
  const EvalResult before = evaluate_dev(start);
  const auto t_run = Clock::now();
  const uint64_t bytes_at_start = tr.bytes_sent();
  std::vector<float> g(P);
  for (uint64_t t = start; t < uint64_t(c.run.steps); ++t) {
    const auto t0 = Clock::now();
    // This participant's members: u32 member | f64 loss | i64 tokens | P × f32 gradient.
    std::string msg;
    for (uint32_t m : hosted) {
      const Task& task = ctx.task_of(m);
      const auto idx = sample_indices(int64_t(task.examples(Split::Train).size()), c.zo.samples, c.task.data_seed,
                                      t * members + m);
      std::vector<const Example*> ex;
      for (int64_t i : idx) ex.push_back(&task.examples(Split::Train)[size_t(i)]);
      BackwardOptions bo;
      bo.checkpoint = c.roles.checkpoint;
      const TaskGradient tg = task_gradient(*ctx.model, task, ex, theta, bo);
      const std::vector<float> flat = flatten_gradient(lora, tg.grads);
      put(msg, m);
      put(msg, tg.loss);
      put(msg, tg.tokens);
      msg.append(reinterpret_cast<const char*>(flat.data()), P * sizeof(float));
    }
    const auto all = tr.allgather(msg);
    std::vector<std::string_view> by_member(members);
    std::vector<double> losses(members, NAN);
    int64_t tokens = 0;
    for (const std::string& part : all)
      for (size_t at = 0; at < part.size();) {
        const auto m = take<uint32_t>(part, at);
        ZEROTH_CHECK(m < members && by_member[m].empty(), "mode fo: member {} sent twice or is unknown", m);
        losses[m] = take<double>(part, at);
        tokens += take<int64_t>(part, at);
        ZEROTH_CHECK(at + P * sizeof(float) <= part.size(), "mode fo: member {}'s gradient is truncated", m);
        by_member[m] = std::string_view(part).substr(at, P * sizeof(float));
        at += P * sizeof(float);
      }
    // Σ over members 0, 1, … in order, then the mean: the same float ops everywhere.
    std::fill(g.begin(), g.end(), 0.0f);
    for (uint32_t m = 0; m < members; ++m) {
      ZEROTH_CHECK(!by_member[m].empty(), "mode fo: no gradient from member {} at step {}", m, t);
      const float* gm = reinterpret_cast<const float*>(by_member[m].data());
      for (size_t i = 0; i < P; ++i) g[i] = g[i] + gm[i];
    }
    const float inv = 1.0f / float(members);
    double g2 = 0;
    for (float& x : g) {
      x = x * inv;
      g2 += double(x) * x;
    }
    const float lr = c.optimizer.lr_at(t);
    opt.step(g, lr);
    ++out.steps_run;
    double mean_loss = 0;
    for (double l : losses) mean_loss += l / double(members);
    if ((t + 1) % uint64_t(c.run.hash_every) == 0 || t + 1 == uint64_t(c.run.steps)) {
      const auto hashes = tr.allgather(lora.set().hash().hex());
      for (uint32_t r = 1; r < hashes.size(); ++r)
        if (hashes[r] != hashes[0])
          throw CollectiveError(fmt::format("replicas diverged in mode fo after step {}: {} 0 has {}, {} {} has {}", t,
                                            tr.noun(), hashes[0], tr.noun(), r, hashes[r]));
    }
    const double step_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (leader) {
      metrics << json{{"event", "step"}, {"step", t}, {"loss", mean_loss}, {"lr", lr},
                      {"grad_rms", std::sqrt(g2 / double(std::max<size_t>(P, 1)))}, {"step_seconds", step_s},
                      {"tokens_per_second", double(tokens) / step_s}}.dump() << "\n" << std::flush;
      if ((t + 1) % uint64_t(c.run.log_every) == 0 || t == 0)
        fmt::print(stderr, "step {}/{} loss {:.4f} lr {:.3g} {:.2f} s/step\n", t + 1, c.run.steps, mean_loss, lr, step_s);
    }
    if (leader && c.run.snapshot_every > 0 && ((t + 1) % uint64_t(c.run.snapshot_every) == 0 ||
                                               t + 1 == uint64_t(c.run.steps))) {
      TensorList snap = lora.set().snapshot();
      for (auto& s : opt.state()) snap.push_back(std::move(s));
      write_snapshot(ctx.dir, t + 1, lora.set().hash().hex(), snap);
    }
    if (c.run.eval_every > 0 && (t + 1) % uint64_t(c.run.eval_every) == 0 && t + 1 < uint64_t(c.run.steps))
      evaluate_dev(t + 1);
  }
  out.steps_done = start + out.steps_run;
  out.final_hash = lora.set().hash().hex();
  out.bytes_sent = tr.bytes_sent() - bytes_at_start;
  out.hosted = hosted.size();
  const EvalResult after = evaluate_dev(out.steps_done);
  const EvalResult test = evaluate_on(Split::Test, "test", out.steps_done);
  if (leader) {
    json s = {{"mode", "fo"}, {"steps", out.steps_done}, {"members", members}, {"final_hash", out.final_hash},
              {"participants", tr.ranks()}, {"transport", tr.describe()},
              {"all_bytes_per_member_per_step",
               out.steps_run ? double(out.bytes_sent) / double(out.steps_run) / double(hosted.size()) : 0.0},
              {"trainable_parameters", P}, {"model_parameters", ctx.model_parameters},
              {"seconds", std::chrono::duration<double>(Clock::now() - t_run).count()},
              {"dev_after", eval_json("dev", out.steps_done, after)}};
    if (start == 0) s["dev_before"] = eval_json("dev", 0, before);
    if (test.examples > 0) s["test_after"] = eval_json("test", out.steps_done, test);
    std::ofstream(ctx.dir.summary()) << s.dump(2) << "\n";
  }
  tr.barrier();
  return out;
}

}  // namespace zeroth::cli
