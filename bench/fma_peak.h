// This machine's f32 FMA peak, the ceiling every GEMM-bound figure is read
// against: independent FMA chains held in registers, with the widest vectors
// the build targets (AVX-512, AVX2 + FMA, or scalar fmaf), on n threads at once.
#pragma once
#include <benchmark/benchmark.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/parallel.h"

namespace zeroth::bench {

// Per thread: 12 independent FMA chains of the widest vector the build targets
// (enough to cover FMA latency × pipes on current x86 cores), `iters` steps.
inline float fma_chains(int64_t iters) {
#if defined(__AVX512F__)
  using V = __m512;
  const auto fma = [](V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); };
  const auto set1 = [](float f) { return _mm512_set1_ps(f); };
  const auto lane0 = [](V a) { return _mm512_cvtss_f32(a); };
#elif defined(__AVX2__) && defined(__FMA__)
  using V = __m256;
  const auto fma = [](V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); };
  const auto set1 = [](float f) { return _mm256_set1_ps(f); };
  const auto lane0 = [](V a) { return _mm256_cvtss_f32(a); };
#else
  using V = float;
  const auto fma = [](V a, V b, V c) { return __builtin_fmaf(a, b, c); };
  const auto set1 = [](float f) { return f; };
  const auto lane0 = [](V a) { return a; };
#endif
  constexpr int kChains = 12;  // 12 accumulators + 2 operands fit AVX2's 16 registers
  V acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = set1(1e-3f * float(i));
  const V a = set1(0.999f), b = set1(1e-4f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], a, b);
  }
  float s = 0.0f;
  for (int i = 0; i < kChains; ++i) s += lane0(acc[i]);
  return s;
}

inline int fma_lanes() {
#if defined(__AVX512F__)
  return 16;
#elif defined(__AVX2__) && defined(__FMA__)
  return 8;
#else
  return 1;
#endif
}

// GFLOP/s of fma_chains on `threads` threads at once.
inline double fma_gflops(int threads, int64_t iters) {
  std::vector<float> sink(static_cast<size_t>(threads));
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(threads, 1, threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) sink[size_t(i)] = fma_chains(iters);
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  benchmark::DoNotOptimize(sink.data());
  return 2.0 * 12 * fma_lanes() * double(iters) * threads / s * 1e-9;
}

// The peak on default_threads(), best of a few runs, measured once per process.
inline double peak_gflops() {
  static const double peak = [] {
    double best = 0.0;
    for (int rep = 0; rep < 3; ++rep) best = std::max(best, fma_gflops(default_threads(), int64_t(1) << 24));
    return best;
  }();
  return peak;
}

}  // namespace zeroth::bench
