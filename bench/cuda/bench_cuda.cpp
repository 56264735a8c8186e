// GPU kernels (Google Benchmark, timed with CUDA events, UseManualTime):
//   DequantGemm   W (n, k) decoded per tile + cuBLAS GEMM: TFLOP/s and the fraction
//                 of the H100 SXM's 989 dense bf16 TFLOP/s (bf16 weights run the
//                 GEMM alone: the decode's cost is the gap to them)
//   GenerateZ     perturbation streams: GB/s written, fraction of 3.35 TB/s HBM3
//   Apply         fused apply of K perturbations: GB/s of θ read + written, same fraction
//   Attention     the straightforward causal attention kernel: GFLOP/s (QKᵀ and PV)
// Each reports its figures as plain counters computed from the summed event
// times. Without a GPU every benchmark stops with SkipWithError.
#include <benchmark/benchmark.h>
#include <cstdint>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "core/apply.h"
#include "core/backend.h"
#include "core/cuda_matmul.h"
#include "core/cuda_ops.h"
#include "core/device_array.h"
#include "core/perturb.h"
#include "core/quant/quant.h"

namespace zeroth {
namespace {

constexpr double kH100Bf16Tflops = 989.0;   // dense, SXM
constexpr double kH100HbmGBs = 3350.0;      // HBM3, SXM

bool require_gpu(benchmark::State& state) {
  if (cuda_available()) return true;
  state.SkipWithError(("no usable CUDA device: " + cuda_describe()).c_str());
  return false;
}

// Seconds between start() and stop() on the default stream.
class EventTimer {
 public:
  EventTimer() { cudaEventCreate(&a_); cudaEventCreate(&b_); }
  ~EventTimer() { cudaEventDestroy(a_); cudaEventDestroy(b_); }
  void start() { cudaEventRecord(a_); }
  double stop() {
    cudaEventRecord(b_);
    cudaEventSynchronize(b_);
    float ms = 0;
    cudaEventElapsedTime(&ms, a_, b_);
    return double(ms) * 1e-3;
  }
 private:
  cudaEvent_t a_{}, b_{};
};

// Random N(0, 0.02) weights quantized once per (dtype, n, k) and kept on the device.
const Tensor& device_weight(DType t, int64_t n, int64_t k) {
  static std::map<std::tuple<DType, int64_t, int64_t>, Tensor> cache;
  auto it = cache.find({t, n, k});
  if (it != cache.end()) return it->second;
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(size_t(n * k));
  for (auto& x : v) x = d(rng);
  Tensor w = quantize(Tensor::from_vector(v, {n, k}), t).to(Device::CUDA);
  return cache.emplace(std::make_tuple(t, n, k), std::move(w)).first->second;
}

const DType kGemmFormats[] = {DType::BF16, DType::Q8_0, DType::Q4_0, DType::NF4, DType::I4_B32};

// Args: format index, precision (0 f32, 1 tf32, 2 bf16: GemmPrecision's order), m, n, k.
void DequantGemm(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const DType t = kGemmFormats[state.range(0)];
  const auto p = GemmPrecision(state.range(1));
  const int64_t m = state.range(2), n = state.range(3), k = state.range(4);
  const Tensor& w = device_weight(t, n, k);
  DeviceArray<float> x(size_t(m * k)), y(size_t(m * n));
  cuda_memset_zero(x.data(), x.bytes());
  CudaMatmul mm({p});
  mm.matmul(x.data(), m, k, w, y.data(), n);  // warm-up: cuBLAS heuristics, scratch
  EventTimer timer;
  double total = 0;
  for (auto _ : state) {
    timer.start();
    mm.matmul(x.data(), m, k, w, y.data(), n);
    const double s = timer.stop();
    state.SetIterationTime(s);
    total += s;
  }
  const double tflops = 2.0 * double(m) * double(n) * double(k) * double(state.iterations()) / total / 1e12;
  state.counters["TFLOPs"] = tflops;
  state.counters["of_989"] = tflops / kH100Bf16Tflops;
  state.SetLabel(std::string(dtype_name(t)) + " " + gemm_precision_name(p) + " tile_rows " +
                 std::to_string(std::min(n, mm.tile_rows(k))));
}

void GemmArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"fmt", "prec", "m", "n", "k"});
  for (int64_t f = 0; f < 5; ++f)
    for (int64_t m : {512, 4096}) b->Args({f, 2, m, 4096, 4096});
  for (int64_t f : {0, 3}) b->Args({f, 2, 4096, 11008, 4096});  // a 7B MLP projection
  for (int64_t f : {0, 2}) b->Args({f, 0, 4096, 4096, 4096});  // the f32 comparison path
  for (int64_t f : {0, 3}) b->Args({f, 1, 4096, 4096, 4096});  // tf32
}
BENCHMARK(DequantGemm)->Apply(GemmArgs)->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);

void report_bandwidth(benchmark::State& state, double bytes_per_iter, double total) {
  const double gbs = bytes_per_iter * double(state.iterations()) / total / 1e9;
  state.counters["GBs"] = gbs;
  state.counters["of_HBM"] = gbs / kH100HbmGBs;
}

// Args: distribution (0 Rademacher, 1 Gaussian), n.
void GenerateZ(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const auto d = state.range(0) == 0 ? Distribution::Rademacher : Distribution::Gaussian;
  const int64_t n = state.range(1);
  DeviceArray<float> z(static_cast<size_t>(n));
  const PerturbationKey key{7, 1, 2, 3};
  generate_z_cuda(key, d, 0, n, z.data());
  EventTimer timer;
  double total = 0;
  for (auto _ : state) {
    timer.start();
    generate_z_cuda(key, d, 0, n, z.data());
    const double s = timer.stop();
    state.SetIterationTime(s);
    total += s;
  }
  report_bandwidth(state, 4.0 * double(n), total);
  state.SetLabel(std::string(distribution_name(d)));
}
BENCHMARK(GenerateZ)->ArgNames({"gauss", "n"})->Args({0, 1 << 28})->Args({1, 1 << 28})->UseManualTime()
    ->Iterations(10)->Unit(benchmark::kMicrosecond);

// Args: distribution, K terms, n. Bytes: θ read and written once (8 B per element).
void Apply(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const auto d = state.range(0) == 0 ? Distribution::Rademacher : Distribution::Gaussian;
  const int64_t count = state.range(1), n = state.range(2);
  std::vector<ScaledPerturbation> terms;
  for (int64_t i = 0; i < count; ++i) terms.push_back({{9, 4, uint32_t(i), 0}, 1e-4f * float(i + 1)});
  DeviceArray<float> theta(static_cast<size_t>(n));
  cuda_memset_zero(theta.data(), theta.bytes());
  apply_perturbations_cuda(terms, d, 0, n, theta.data(), 1.0f);
  EventTimer timer;
  double total = 0;
  for (auto _ : state) {
    timer.start();
    apply_perturbations_cuda(terms, d, 0, n, theta.data(), 1.0f);
    const double s = timer.stop();
    state.SetIterationTime(s);
    total += s;
  }
  report_bandwidth(state, 8.0 * double(n), total);
  state.SetLabel(std::string(distribution_name(d)) + " K=" + std::to_string(count));
}
BENCHMARK(Apply)->ArgNames({"gauss", "K", "n"})->Args({0, 1, 1 << 28})->Args({0, 16, 1 << 28})
    ->Args({1, 1, 1 << 28})->Args({1, 16, 1 << 28})->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);

// Args: sequences, tokens per sequence, heads, kv heads, head dim.
void Attention(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t seqs = state.range(0), len = state.range(1), heads = state.range(2), kvh = state.range(3),
                hd = state.range(4), n = seqs * len;
  std::vector<SeqSpan> spans;
  for (int64_t s = 0; s < seqs; ++s) spans.push_back({s * len, len});
  DeviceArray<float> q(size_t(n * heads * hd)), k(size_t(n * kvh * hd)), v(size_t(n * kvh * hd)),
      out(size_t(n * heads * hd));
  for (auto* a : {&q, &k, &v}) cuda_memset_zero(a->data(), a->bytes());
  causal_attention_cuda(q.data(), k.data(), v.data(), out.data(), spans, n, heads, kvh, hd);
  EventTimer timer;
  double total = 0;
  for (auto _ : state) {
    timer.start();
    causal_attention_cuda(q.data(), k.data(), v.data(), out.data(), spans, n, heads, kvh, hd);
    const double s = timer.stop();
    state.SetIterationTime(s);
    total += s;
  }
  // QKᵀ and PV over the causal half: 2 · 2 · hd FLOPs per (query, key ≤ query) pair.
  const double pairs = double(seqs) * double(len) * double(len + 1) / 2.0;
  state.counters["GFLOPs"] = 4.0 * double(hd) * pairs * double(heads) * double(state.iterations()) / total / 1e9;
  state.counters["tokens_per_s"] = double(n) * double(state.iterations()) / total;
}
BENCHMARK(Attention)->ArgNames({"seqs", "len", "heads", "kvh", "hd"})->Args({8, 512, 32, 8, 128})
    ->Args({1, 4096, 32, 8, 128})->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zeroth
