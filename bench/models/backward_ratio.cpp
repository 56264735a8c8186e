// The gradient path's cost against a plain forward, on the same sequences:
// a LoRA backward step (forward with a tape, LM or label-word loss, backward
// into the adapters) ÷ the forward BatchScorer runs for evaluation, with every
// layer's activations kept or with per-layer checkpointing; and forward-mode
// directional derivatives (task_jvp: exact g_k without a tape) against the
// finite differences a ZO member runs (θ ± εz_k: 2 variants per direction in
// one batched forward). Prints one JSON line.
//
//   backward_ratio [--mode time|time-jvp|rss-forward|rss-keep|rss-checkpoint|rss-jvp]
//                  [--model random-135m|smollm2|stories260K|PATH] [--quantize DT]
//                  [--task lm|classification] [--batch 16] [--seq 64] [--iters 3]
//                  [--threads N] [--rank 8] [--targets q,v] [--q 4]
//
//   time            forward, keep-all backward and checkpointed backward,
//                   interleaved `iters` times in this process; medians and ratios
//   time-jvp        forward, one JVP pass of 1 direction, the ZO member's
//                   finite differences for 1 direction (2 variants), one JVP
//                   pass of q directions, and the finite differences for q
//                   directions (2q variants), interleaved; medians and ratios
//   rss-*           `iters` of one of them alone, so VmHWM is that mode's peak
//                   (bench/run-backward starts one process per mode; rss-jvp:
//                   one direction per pass)
// PEERS.md: PyTorch's backprop LoRA step is 2.1 × its forward and 3.24 × its
// forward's peak RSS on this shape (SmolLM2-135M, batch 16 × 64 tokens).
#include <cstdint>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/bench_common.h"
#include "models/tasks/task_gradient.h"
#include "models/tasks/task_jvp.h"
#include "optim/jvp_step.h"

namespace zeroth {
namespace {

int run(int argc, char** argv) {
  bench::ModelBenchFlags f;
  f.mode = "time", f.model = "random-135m", f.q = 4, f.batch = 16, f.seq = 64;
  std::string targets = "q,v";
  int64_t rank = 8;
  for (int i = 1; i < argc; ++i) {
    if (f.take(argc, argv, i)) continue;
    const std::string s = argv[i];
    if (s == "--rank") rank = std::stol(bench::flag_value(argc, argv, i));
    else if (s == "--targets") targets = bench::flag_value(argc, argv, i);
    else throw std::runtime_error("unknown argument " + s + " (see the header of bench/models/backward_ratio.cpp)");
  }
  const auto& [mode, model_name, quantize, task_type, q, iters, threads, batch, seq] = f;
  const bool timing = mode == "time" || mode == "time-jvp";
  if (!timing && mode != "rss-forward" && mode != "rss-keep" && mode != "rss-checkpoint" && mode != "rss-jvp")
    throw std::runtime_error("--mode must be time, time-jvp, rss-forward, rss-keep, rss-checkpoint or rss-jvp");
  if (q < 1) throw std::runtime_error("--q must be at least 1");
  std::string label;
  LlamaModel model(bench::load_bench_model(model_name, quantize, label), threads);
  const bench::BenchTask bt = bench::make_bench_task(task_type, model.vocab_size(), batch, seq);
  const Task& task = *bt.task;
  LoraConfig lc;
  lc.rank = rank;
  lc.targets.clear();
  std::stringstream ts(targets);
  for (std::string t; std::getline(ts, t, ',');) {
    const auto p = parse_proj(t);
    if (!p) throw std::runtime_error("--targets: unknown projection " + t);
    lc.targets.push_back(*p);
  }
  LoraTrainable trainable(lc, model);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  for (const auto& t : trainable.set().tensors())
    for (int64_t i = 0; i < t.n; ++i) t.data[i] = nd(rng);
  const PerturbedLora lora(trainable, Distribution::Rademacher, {Variant{PerturbationKey{}, 0.0f}});  // θ
  auto keys = [](int count) {
    std::vector<PerturbationKey> k;
    for (int i = 0; i < count; ++i) k.push_back({7, 0, 0, uint32_t(i)});
    return k;
  };
  std::vector<const Example*> examples;
  for (const auto& e : task.examples(Split::Train)) examples.push_back(&e);
  const auto [rss_load, hwm_load] = bench::rss_mib();

  std::vector<double> t_fwd, t_keep, t_ckpt, t_jvp1, t_fd1, t_jvpq, t_fdq;
  double loss_fwd = 0, loss_bwd = 0;
  int64_t rows = 0;
  auto forward = [&] {
    BatchScorer scorer(task);
    for (const Example* e : examples) scorer.add(*e, 0);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = scorer.run(model, &lora);
    t_fwd.push_back(bench::seconds_since(t0));
    loss_fwd = r.loss[0];
    rows = r.tokens;
  };
  auto backward = [&](bool ckpt) {
    BackwardOptions o;
    o.checkpoint = ckpt;
    const auto t0 = std::chrono::steady_clock::now();
    const TaskGradient g = task_gradient(model, task, examples, lora, o);
    (ckpt ? t_ckpt : t_keep).push_back(bench::seconds_since(t0));
    loss_bwd = g.loss;
    rows = g.tokens;
  };
  auto jvp = [&](int count, std::vector<double>& times) {
    const LoraDirections dirs(trainable, Distribution::Rademacher, keys(count));
    const auto t0 = std::chrono::steady_clock::now();
    const TaskJvp r = task_jvp(model, task, examples, lora, dirs, count);
    times.push_back(bench::seconds_since(t0));
    rows = r.tokens;
  };
  auto finite_differences = [&](int count, std::vector<double>& times) {
    // zo_member_step's central differences: variants (+ε, −ε) per direction, one batched forward.
    std::vector<Variant> variants;
    for (const auto& k : keys(count)) variants.insert(variants.end(), {Variant{k, 1e-3f}, Variant{k, -1e-3f}});
    const PerturbedLora perturbed(trainable, Distribution::Rademacher, variants);
    BatchScorer scorer(task);
    for (int v = 0; v < 2 * count; ++v)
      for (const Example* e : examples) scorer.add(*e, v);
    const auto t0 = std::chrono::steady_clock::now();
    scorer.run(model, &perturbed);
    times.push_back(bench::seconds_since(t0));
  };
  for (int it = 0; it < iters; ++it) {
    if (timing || mode == "rss-forward") forward();
    if (mode == "time" || mode == "rss-keep") backward(false);
    if (mode == "time" || mode == "rss-checkpoint") backward(true);
    if (mode == "time-jvp" || mode == "rss-jvp") jvp(1, t_jvp1);
    if (mode == "time-jvp") {
      finite_differences(1, t_fd1);
      if (q > 1) jvp(q, t_jvpq), finite_differences(q, t_fdq);
    }
  }
  const auto [rss_end, hwm_end] = bench::rss_mib();
  nlohmann::json j = f.json(label);
  j["rows"] = rows;
  j["lora"] = fmt::format("r{} on {}", rank, targets);
  j["threads"] = threads;
  j["iters"] = iters;
  j["rss_after_load_mib"] = rss_load;
  j["peak_after_load_mib"] = hwm_load;
  j["peak_mib"] = hwm_end;
  if (!t_fwd.empty()) j["forward_s"] = bench::median(t_fwd), j["loss_forward"] = loss_fwd;
  if (!t_keep.empty()) j["backward_keep_s"] = bench::median(t_keep);
  if (!t_ckpt.empty()) j["backward_checkpoint_s"] = bench::median(t_ckpt);
  if (!t_keep.empty() || !t_ckpt.empty()) j["loss_backward"] = loss_bwd;
  if (mode == "time") {
    j["keep_over_forward"] = bench::median(t_keep) / bench::median(t_fwd);
    j["checkpoint_over_forward"] = bench::median(t_ckpt) / bench::median(t_fwd);
  }
  if (!t_jvp1.empty()) j["jvp1_s"] = bench::median(t_jvp1);
  if (mode == "time-jvp") {
    const double f = bench::median(t_fwd);
    j["fd1_s"] = bench::median(t_fd1);
    j["jvp1_over_forward"] = bench::median(t_jvp1) / f;
    j["jvp1_over_fd1"] = bench::median(t_jvp1) / bench::median(t_fd1);
    j["fd1_over_forward"] = bench::median(t_fd1) / f;
    if (q > 1) {
      j["jvpq_s"] = bench::median(t_jvpq);
      j["fdq_s"] = bench::median(t_fdq);
      j["jvpq_over_forward"] = bench::median(t_jvpq) / f;
      j["jvpq_over_fdq"] = bench::median(t_jvpq) / bench::median(t_fdq);
      j["fdq_over_forward"] = bench::median(t_fdq) / f;
    }
  }
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace
}  // namespace zeroth

int main(int argc, char** argv) { return zeroth::bench::guarded_main("backward_ratio", zeroth::run, argc, argv); }
