// Peak resident memory of training against evaluation on the same batch, one
// mode per process so that VmHWM belongs to that mode alone (bench/run-zo runs
// both and prints the ratio). Prints one JSON line.
//
//   rss_train --mode eval|train [--model smollm2|random-135m|stories260K|PATH]
//             [--quantize DT] [--task lm|classification] [--q 2] [--batch 4]
//             [--seq 48] [--iters 3] [--threads N]
//
//   eval   `iters` forwards of the LoRA-adapted model (θ unperturbed) over the
//          2q·B sequences a step runs, with the loss, as evaluate() scores a
//          batch of that many rows
//   train  `iters` ZO steps (zo_member_step, q perturbations × B samples, one
//          batched forward over the same 2q·B sequences) each followed by the
//          update (ZerothOrderOptimizer::apply)
// What training adds over evaluation is the optimizer and the per-projection
// scratch of the perturbed factors: the goal is train ÷ eval ≤ 1.2 (PEERS.md: ≤ 1.05).
#include <cstdint>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bench/bench_common.h"
#include "optim/update.h"
#include "optim/zo_step.h"

namespace zeroth {
namespace {

int run(int argc, char** argv) {
  bench::ModelBenchFlags f;
  f.model = "smollm2";
  for (int i = 1; i < argc; ++i)
    if (!f.take(argc, argv, i))
      throw std::runtime_error(std::string("unknown argument ") + argv[i] + " (see the header of bench/optim/rss_train.cpp)");
  const auto& [mode, model_name, quantize, task_type, q, iters, threads, batch, seq] = f;
  if (mode != "eval" && mode != "train") throw std::runtime_error("--mode eval|train is required");

  const auto [rss0, hwm0] = bench::rss_mib();
  std::string label;
  LlamaModel model(bench::load_bench_model(model_name, quantize, label), threads);
  const bench::BenchTask bt = bench::make_bench_task(task_type, model.vocab_size(), batch, seq);
  const Task& task = *bt.task;
  LoraConfig lcfg;
  LoraTrainable lora(lcfg, model);
  lora.initialize(11);
  const auto [rss1, hwm1] = bench::rss_mib();

  double loss = 0;
  int64_t rows = 0;
  if (mode == "eval") {
    BatchScorer scorer(task);
    for (int32_t v = 0; v < 2 * q; ++v)
      for (const Example& e : task.examples(Split::Train)) scorer.add(e, v);
    for (int it = 0; it < iters; ++it) {
      const auto r = scorer.run(model, &lora.adapters());
      loss = r.loss[0];
      rows = r.tokens;
    }
  } else {
    OptimizerConfig ocfg;
    ocfg.lr = 1e-5f;
    ocfg.run_seed = 5;
    ZerothOrderOptimizer opt(ocfg, lora.set(), threads);
    ZoConfig zc;
    zc.q = q;
    zc.samples = int(batch);
    for (int it = 0; it < iters; ++it) {
      const MemberStepResult r = zo_member_step(model, task, lora, zc, ocfg.run_seed, 0, uint64_t(it), 0, 1, 1.0f);
      StepEntry e;
      e.step = uint64_t(it);
      e.scale = 1.0f;
      e.lr = ocfg.lr;
      e.records = r.records;
      opt.apply(e);
      loss = r.loss;
      rows = r.tokens;
    }
  }
  const auto [rss2, hwm2] = bench::rss_mib();
  nlohmann::json j = f.json(label);
  j["rows"] = rows;
  j["iters"] = iters;
  j["loss"] = loss;
  j["rss_start_mib"] = rss0;
  j["rss_after_load_mib"] = rss1;
  j["peak_after_load_mib"] = hwm1;
  j["rss_end_mib"] = rss2;
  j["peak_mib"] = hwm2;
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace
}  // namespace zeroth

int main(int argc, char** argv) { return zeroth::bench::guarded_main("rss_train", zeroth::run, argc, argv); }
