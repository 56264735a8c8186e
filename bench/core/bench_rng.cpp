// Philox, perturbation streams and the fused apply, with a memcpy of the same θ in
// the same run as the bandwidth baseline.
//
// Read-off: apply's theta_GBps counts 8 bytes per parameter (θ read + written)
// and memcpy's GBps counts 8 bytes per float (source read + destination written),
// so theta_GBps / memcpy GBps (same thread count) is the fraction of memory
// bandwidth the fused apply reaches; for K = 1 that is the target, for large K the
// apply is bound by Philox and elem_records_per_s is the figure.
#include <benchmark/benchmark.h>
#include <cstdint>

#include <cstring>
#include <vector>

#include "core/apply.h"
#include "core/cpu/rng_simd.h"
#include "core/parallel.h"
#include "core/perturb.h"
#include "core/philox.h"

namespace zeroth {
namespace {

constexpr int64_t kTheta = int64_t(1) << 22;  // 4M parameters = 16 MiB of f32

const bool kNote = [] {
  benchmark::AddCustomContext("zeroth_rng_note",
                              "apply theta_GBps and memcpy GBps both count 8 bytes/param; compare at equal threads");
  benchmark::AddCustomContext("zeroth_rng_simd", cpu::rng_simd_is_avx2() ? "avx2" : "scalar");
  return true;
}();

// Philox output in GB/s: 16 bytes per block, 8 blocks per call.
void BM_PhiloxBlocks8(benchmark::State& state) {
  const PerturbationKey key{1, 2, 3, 4};
  uint32_t words[32];
  uint32_t block = 0, sink = 0;
  for (auto _ : state) {
    for (int i = 0; i < 1024; ++i, block += 8) {
      cpu::philox_blocks8(key, block, words);
      sink ^= words[i & 31];
    }
    benchmark::DoNotOptimize(sink);
  }
  state.SetBytesProcessed(state.iterations() * 1024 * 8 * 16);
  state.counters["blocks_per_s"] = benchmark::Counter(double(state.iterations()) * 1024 * 8, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PhiloxBlocks8);

// The scalar (host/device shared) function, one block at a time.
void BM_PhiloxScalar(benchmark::State& state) {
  const PhiloxKey key = philox_key(1);
  uint32_t c = 0, sink = 0;
  for (auto _ : state) {
    for (int i = 0; i < 8192; ++i) sink ^= philox4x32_10({{c++, 3, 2, 1}}, key).w[i & 3];
    benchmark::DoNotOptimize(sink);
  }
  state.SetBytesProcessed(state.iterations() * 8192 * 16);
}
BENCHMARK(BM_PhiloxScalar);

// z generation into a 1M-float buffer: ns per element and elements/s.
void BM_GenerateZ(benchmark::State& state) {
  const auto d = Distribution(state.range(0));
  const bool reference = state.range(1) != 0;
  const int64_t n = int64_t(1) << 20;
  std::vector<float> z(static_cast<size_t>(n));
  uint32_t step = 0;
  for (auto _ : state) {
    const PerturbationKey key{7, step++, 0, 0};
    if (reference)
      generate_z_reference(key, d, 0, n, z.data());
    else
      generate_z(key, d, 0, n, z.data());
    benchmark::DoNotOptimize(z.data());
  }
  state.SetLabel(std::string(distribution_name(d)) + (reference ? " scalar reference" : " fast"));
  state.counters["elements_per_s"] = benchmark::Counter(double(state.iterations() * n), benchmark::Counter::kIsRate);
  // Shown with an "s" suffix by the library: the number is nanoseconds per element.
  state.counters["ns_per_element"] = benchmark::Counter(
      double(state.iterations() * n) * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_GenerateZ)->ArgNames({"dist", "ref"})->Args({0, 0})->Args({1, 0})->Args({0, 1})->Args({1, 1});

// Fused apply of K terms to 4M parameters: args (distribution, K, threads).
void BM_Apply(benchmark::State& state) {
  const auto d = Distribution(state.range(0));
  const int64_t k = state.range(1);
  const int threads = int(state.range(2));
  std::vector<float> theta(static_cast<size_t>(kTheta), 0.01f);
  std::vector<ScaledPerturbation> terms;
  for (int64_t i = 0; i < k; ++i) terms.push_back({{99, 5, uint32_t(i / 4), uint32_t(i % 4)}, 1e-6f});
  for (auto _ : state) {
    apply_perturbations(terms, d, 0, kTheta, theta.data(), 1.0f, threads);
    benchmark::ClobberMemory();
  }
  state.SetLabel(distribution_name(d));
  state.counters["elem_records_per_s"] =
      benchmark::Counter(double(state.iterations() * kTheta * k), benchmark::Counter::kIsRate);
  state.counters["theta_GBps"] = benchmark::Counter(double(state.iterations() * kTheta) * 8 * 1e-9,
                                                    benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Apply)
    ->ArgNames({"dist", "K", "threads"})
    ->ArgsProduct({{0}, {1, 16, 256}, {1, 2}})
    ->ArgsProduct({{1}, {1, 16}, {2}})
    ->UseRealTime()  // OpenMP workers' time is not in the main thread's CPU time
    ->Unit(benchmark::kMillisecond);

// memcpy of the same 16 MiB θ, split like the apply over `threads` threads.
void BM_MemcpyTheta(benchmark::State& state) {
  const int threads = int(state.range(0));
  std::vector<float> src(static_cast<size_t>(kTheta), 1.0f), dst(static_cast<size_t>(kTheta));
  for (auto _ : state) {
    parallel_for(kTheta, kApplyChunk * 4, threads, [&](int64_t b, int64_t e) {
      std::memcpy(dst.data() + b, src.data() + b, size_t(e - b) * sizeof(float));
    });
    benchmark::ClobberMemory();
  }
  state.counters["GBps"] = benchmark::Counter(double(state.iterations() * kTheta) * 8 * 1e-9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemcpyTheta)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zeroth
