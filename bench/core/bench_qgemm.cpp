// Quantized matrix product y (m, n) = x (m, k) · Wᵀ for every weight dtype, at
// SmolLM2-135M's projection shapes and a 4096² square, beside an Eigen f32 GEMM
// of the same shape in the same run. m 512 and 1024: one product of 2n rows
// against two of n (the JVP runs its tangent rows through W as one product).
//
// Counters: GFLOP/s = 2·m·n·k / time; vs_eigen = that over Eigen's GFLOP/s for
// the same (m, n, k), measured once per shape in this process (see eigen_gflops).
// vs_peak = GFLOP/s over this machine's f32 FMA peak on as many threads (the
// fma_peak rows: independent FMA chains in registers, the widest vectors the
// build targets). qgemm_int8_* rows: the opt-in int8-activation path (m ≤ 16 only).
// Run e.g.: zeroth_bench_core --benchmark_filter=qgemm --benchmark_min_time=0.05s
#include <benchmark/benchmark.h>
#include <cstdint>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "bench/fma_peak.h"
#include "core/cpu/qgemm.h"
#include "core/cpu/qgemm_decode.h"
#include "core/half.h"
#include "core/matmul.h"
#include "core/parallel.h"
#include "core/quant/blocks.h"
#include "core/quant/quant.h"

namespace zeroth {
namespace {
using bench::fma_gflops;
using bench::fma_lanes;
using bench::peak_gflops;

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::vector<float> normal(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Weights are built once per (dtype, n, k): quantized from N(0, 0.02), or valid
// K-quant blocks of random bytes with sane f16 super-block scales.
const Tensor& weight(DType t, int64_t n, int64_t k) {
  static std::map<std::tuple<DType, int64_t, int64_t>, Tensor> cache;
  auto key = std::make_tuple(t, n, k);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Tensor w;
  if (can_quantize_to(t)) {
    w = quantize(Tensor::from_vector(normal(size_t(n * k), 1, 0.02f), {n, k}), t);
  } else {
    w = Tensor::empty(t, {n, k});
    auto* p = static_cast<uint8_t*>(w.raw());
    std::mt19937 rng(2);
    for (size_t i = 0; i < w.nbytes(); ++i) p[i] = uint8_t(rng());
    const size_t bb = size_t(dtype_info(t).block_bytes);
    for (size_t off = 0; off < w.nbytes(); off += bb) {
      const uint16_t d = f32_to_f16(2e-4f), dmin = f32_to_f16(1e-4f);
      if (t == DType::Q6_K) {
        std::memcpy(p + off + offsetof(BlockQ6K, d), &d, 2);
      } else {
        std::memcpy(p + off, &d, 2);
        std::memcpy(p + off + 2, &dmin, 2);
      }
    }
  }
  return cache.emplace(key, std::move(w)).first->second;
}

double eigen_seconds(const RowMajor& x, const RowMajor& w, RowMajor& y) {
  const auto t0 = std::chrono::steady_clock::now();
  y.noalias() = x * w.transpose();
  benchmark::DoNotOptimize(y.data());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Eigen f32 GFLOP/s for one shape: best of a few runs after a warm-up, cached.
double eigen_gflops(int64_t m, int64_t n, int64_t k) {
  static std::map<std::tuple<int64_t, int64_t, int64_t>, double> cache;
  auto key = std::make_tuple(m, n, k);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  Eigen::setNbThreads(default_threads());
  RowMajor x = RowMajor::Random(m, k), w = RowMajor::Random(n, k), y(m, n);
  double best = 1e30, total = 0.0;
  for (int rep = 0; rep < 50 && (rep < 3 || total < 0.2); ++rep) {
    const double s = eigen_seconds(x, w, y);
    if (rep > 0) best = std::min(best, s);
    total += s;
  }
  return cache[key] = 2.0 * double(m * n * k) / best * 1e-9;
}

void BM_fma_peak(benchmark::State& state) {
  const int threads = int(state.range(0));
  double best = 0.0;
  for (auto _ : state) best = std::max(best, fma_gflops(threads, int64_t(1) << 24));
  state.counters["GFLOP/s"] = best;
  state.counters["lanes"] = fma_lanes();
}

void set_counters(benchmark::State& state, int64_t m, int64_t n, int64_t k, double eigen) {
  const double flops = 2.0 * double(m * n * k);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["eigen_GFLOP/s"] = eigen;
  // a rate too: (flops / eigen rate) per second of ours = our rate / Eigen's
  state.counters["vs_eigen"] = benchmark::Counter(flops * 1e-9 / eigen, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["vs_peak"] =
      benchmark::Counter(flops * 1e-9 / peak_gflops(), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_qgemm(benchmark::State& state, DType t, int64_t m, int64_t n, int64_t k) {
  const Tensor& w = weight(t, n, k);
  const auto x = normal(size_t(m * k), 3, 1.0f);
  std::vector<float> y(size_t(m * n));
  const double eigen = eigen_gflops(m, n, k);
  for (auto _ : state) {
    matmul(x.data(), m, k, w, y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state, m, n, k, eigen);
}

// The opt-in int8-activation path (core/cpu/qgemm.h), for generation-sized m.
void BM_qgemm_int8(benchmark::State& state, DType t, int64_t m, int64_t n, int64_t k) {
  const Tensor& w = weight(t, n, k);
  const auto x = normal(size_t(m * k), 3, 1.0f);
  std::vector<float> y(size_t(m * n));
  const double eigen = eigen_gflops(m, n, k);
  for (auto _ : state) {
    matmul_int8(x.data(), m, k, w, y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state, m, n, k, eigen);
}

void BM_eigen(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  Eigen::setNbThreads(default_threads());
  RowMajor x = RowMajor::Random(m, k), w = RowMajor::Random(n, k), y(m, n);
  for (auto _ : state) {
    y.noalias() = x * w.transpose();
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * double(m * n * k);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["vs_peak"] =
      benchmark::Counter(flops * 1e-9 / peak_gflops(), benchmark::Counter::kIsIterationInvariantRate);
}

// Decoding alone: one 4096-element row into an L1-resident buffer, as matmul
// does per slab (elements/s = decode throughput of one core).
void BM_decode(benchmark::State& state, DType t) {
  const Tensor& w = weight(t, 16, 4096);
  std::vector<float> out(4096);
  for (auto _ : state) {
    for (int64_t r = 0; r < 16; ++r) decode_row_segment_fast(t, w.row(r), 4096, 0, 4096, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["Gelem/s"] = benchmark::Counter(16 * 4096 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

struct Shape3 { int64_t k, n; std::vector<int64_t> ms; };

const bool kRegistered = [] {
  const std::vector<Shape3> shapes = {{576, 1536, {1, 4, 16, 512, 1024}}, {1536, 576, {1, 4, 16, 512, 1024}}, {4096, 4096, {1, 16}}};
  const DType types[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                         DType::Q4_K, DType::Q6_K, DType::I8_B32, DType::I4_B32, DType::NF4};
  benchmark::RegisterBenchmark("fma_peak", BM_fma_peak)
      ->ArgName("threads")
      ->Arg(1)
      ->Arg(default_threads())
      ->Iterations(3)
      ->UseRealTime();
  for (DType t : types)
    benchmark::RegisterBenchmark(("decode_" + std::string(dtype_name(t))).c_str(), BM_decode, t);
  for (const auto& s : shapes)
    for (int64_t m : s.ms) {
      const std::string shape = "/k" + std::to_string(s.k) + "_n" + std::to_string(s.n) + "/m" + std::to_string(m);
      benchmark::RegisterBenchmark(("eigen_f32" + shape).c_str(), BM_eigen, m, s.n, s.k)->Unit(benchmark::kMicrosecond)->UseRealTime();
      for (DType t : types) {
        if (s.k % dtype_info(t).block_elems != 0) continue;  // K-quants need k % 256 == 0
        benchmark::RegisterBenchmark(("qgemm_" + std::string(dtype_name(t)) + shape).c_str(), BM_qgemm, t, m, s.n, s.k)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
        if (m <= 16 && matmul_int8_supported(t))
          benchmark::RegisterBenchmark(("qgemm_int8_" + std::string(dtype_name(t)) + shape).c_str(), BM_qgemm_int8, t,
                                       m, s.n, s.k)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
      }
    }
  return true;
}();

}  // namespace
}  // namespace zeroth
