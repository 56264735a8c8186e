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

// The widest f32 vector the build targets, and its FMA.
#if defined(__AVX512F__)
using FmaVec = __m512;
inline FmaVec fma_vec(FmaVec a, FmaVec b, FmaVec c) { return _mm512_fmadd_ps(a, b, c); }
inline FmaVec fma_set1(float f) { return _mm512_set1_ps(f); }
inline float fma_lane0(FmaVec a) { return _mm512_cvtss_f32(a); }
#elif defined(__AVX2__) && defined(__FMA__)
using FmaVec = __m256;
inline FmaVec fma_vec(FmaVec a, FmaVec b, FmaVec c) { return _mm256_fmadd_ps(a, b, c); }
inline FmaVec fma_set1(float f) { return _mm256_set1_ps(f); }
inline float fma_lane0(FmaVec a) { return _mm256_cvtss_f32(a); }
#else
using FmaVec = float;
inline FmaVec fma_vec(FmaVec a, FmaVec b, FmaVec c) { return __builtin_fmaf(a, b, c); }
inline FmaVec fma_set1(float f) { return f; }
inline float fma_lane0(FmaVec a) { return a; }
#endif
inline int fma_lanes() { return int(sizeof(FmaVec) / sizeof(float)); }

// Independent chains per thread: enough to cover FMA latency × pipes on
// current x86 cores; 12 accumulators + 2 operands fit AVX2's 16 registers.
constexpr int kFmaChains = 12;

// Per thread: kFmaChains FMA chains of `iters` steps.
inline float fma_chains(int64_t iters) {
  FmaVec acc[kFmaChains];
  for (int i = 0; i < kFmaChains; ++i) acc[i] = fma_set1(1e-3f * float(i));
  const FmaVec a = fma_set1(0.999f), b = fma_set1(1e-4f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kFmaChains; ++i) acc[i] = fma_vec(acc[i], a, b);
  }
  float s = 0.0f;
  for (int i = 0; i < kFmaChains; ++i) s += fma_lane0(acc[i]);
  return s;
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
  return 2.0 * kFmaChains * fma_lanes() * double(iters) * threads / s * 1e-9;
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
