// Catch-up replay: a late joiner rebuilds θ from the ledger. Fused replay (every
// entry applied to one cache-resident chunk of θ before moving on) against
// step-by-step apply (one full pass over θ per entry), both in the same run on
// the same entries, checked bit-identical.
//
// Read-off: steps_per_s and param_records_per_s (θ elements × records applied
// per second) for the fused replay, stepwise_steps_per_s for the baseline, and
// fused_over_stepwise = their ratio (> 1: fusing pays). Args: steps, θ layout
// (0 = small, 1 = LoRA of SmolLM2-135M), rule, threads.
#include <benchmark/benchmark.h>
#include <cstdint>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "optim/update.h"

namespace zeroth {
namespace {

constexpr int kRecords = 16;  // 4 members × 4 slots per step

// LoRA r = 8 on q and v of `layers` layers: A is [r, dim], B is [out, r].
struct LoraTheta {
  std::vector<std::vector<float>> storage;
  TrainableSet set;
  LoraTheta(int layers, int64_t dim, int64_t kv_dim) {
    constexpr int64_t r = 8;
    std::mt19937 rng(1);
    std::normal_distribution<float> w(0.0f, 0.02f);
    for (int l = 0; l < layers; ++l)
      for (auto [target, out] : {std::pair{"q", dim}, std::pair{"v", kv_dim}}) {
        const std::string p = "layers." + std::to_string(l) + "." + target;
        for (auto [suffix, shape] : {std::pair{".lora_A", Shape{r, dim}}, std::pair{".lora_B", Shape{out, r}}}) {
          storage.emplace_back(size_t(shape_numel(shape)));
          for (float& x : storage.back()) x = w(rng);
          set.add(p + suffix, shape, storage.back().data());
        }
      }
  }
};

// SmolLM2-135M: 30 layers, hidden 576, 3 KV heads × 64 → 460,800 parameters.
// Small: a stories260K-sized model (5 layers, dim 64, kv 32) → 8,960 parameters.
LoraTheta make_theta(int64_t layout) { return layout == 1 ? LoraTheta(30, 576, 192) : LoraTheta(5, 64, 32); }

std::vector<StepEntry> make_entries(int64_t steps) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> code(-127, 127);
  std::vector<StepEntry> out(static_cast<size_t>(steps));
  for (int64_t s = 0; s < steps; ++s) {
    StepEntry& e = out[size_t(s)];
    e.step = uint64_t(s);
    e.scale = 1e-3f;
    e.lr = 1e-4f;
    for (int k = 0; k < kRecords; ++k)
      e.records.push_back({uint32_t(k / 4), uint32_t(k % 4), uint8_t(int8_t(code(rng))), RecordKind::ZerothOrder});
  }
  return out;
}

void BM_Replay(benchmark::State& state) {
  const int64_t steps = state.range(0), layout = state.range(1);
  OptimizerConfig cfg;
  cfg.rule = UpdateRule(state.range(2));
  cfg.weight_decay = 0.01f;
  cfg.run_seed = 7;
  const int threads = int(state.range(3));
  const std::vector<StepEntry> entries = make_entries(steps);
  double fused_s = 0, stepwise_s = 0;
  int64_t params = 0;
  for (auto _ : state) {
    LoraTheta fused = make_theta(layout), stepwise = make_theta(layout);
    params = fused.set.size();
    ZerothOrderOptimizer of(cfg, fused.set, threads), os(cfg, stepwise.set, threads);
    const auto t0 = std::chrono::steady_clock::now();
    of.replay(entries);
    const auto t1 = std::chrono::steady_clock::now();
    for (const StepEntry& e : entries) os.apply(e);
    const auto t2 = std::chrono::steady_clock::now();
    const double f = std::chrono::duration<double>(t1 - t0).count();
    fused_s += f;
    stepwise_s += std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(f);
    if (!(fused.set.hash() == stepwise.set.hash())) state.SkipWithError("fused replay differs from step-by-step apply");
  }
  const double n = double(state.iterations());
  state.counters["params"] = double(params);
  state.counters["steps_per_s"] = n * double(steps) / fused_s;
  state.counters["param_records_per_s"] = n * double(steps) * kRecords * double(params) / fused_s;
  state.counters["stepwise_steps_per_s"] = n * double(steps) / stepwise_s;
  state.counters["fused_over_stepwise"] = stepwise_s / fused_s;
  state.SetLabel(std::string(update_rule_name(cfg.rule)) + (layout == 1 ? " lora-smollm2-135m" : " small"));
}

constexpr int64_t kSgd = int64_t(UpdateRule::Sgd), kMomentum = int64_t(UpdateRule::Momentum),
                  kSign = int64_t(UpdateRule::Sign);
BENCHMARK(BM_Replay)
    ->ArgNames({"steps", "layout", "rule", "threads"})
    ->Args({10000, 0, kSgd, 1})
    ->Args({10000, 1, kSgd, 1})
    ->Args({2000, 1, kSgd, 2})
    ->Args({1000, 1, kMomentum, 1})
    ->Args({1000, 1, kSign, 1})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zeroth
