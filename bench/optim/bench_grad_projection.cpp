// A gradient member's cost per slot: g_k = ⟨∇L, z_k⟩ over the trainable index
// space (optim/grad_step.h project_gradient: regenerate z_k with Philox, dot
// with the flat gradient). One backward pays for many slots, so this is the
// marginal cost of one more one-byte record from a gradient member.
// Arg: trainable elements (8,960 = stories260K LoRA r8 q,v; 460,800 = SmolLM2-135M
// LoRA r8 q,v; 3,686,400 = 8× that, a larger adapter set) and
// the distribution (0 Rademacher, 1 Gaussian). Read-off: ns per slot and
// elements per second.
#include <benchmark/benchmark.h>
#include <cstdint>

#include <random>
#include <vector>

#include "optim/grad_step.h"

namespace zeroth {
namespace {

void BM_ProjectGradient(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Distribution d = state.range(1) ? Distribution::Gaussian : Distribution::Rademacher;
  std::vector<float> g(static_cast<size_t>(n));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (auto& x : g) x = nd(rng);
  uint32_t slot = 0;
  double sink = 0;
  for (auto _ : state) {
    sink += project_gradient(g, PerturbationKey{7, 3, 1, slot++}, d);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["elements_per_s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(distribution_name(d));
}
BENCHMARK(BM_ProjectGradient)->ArgsProduct({{8960, 460800, 3686400}, {0, 1}})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace zeroth
