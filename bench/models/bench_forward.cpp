// Batched forward speed of whole models: 16 sequences × 64 tokens, hidden
// states plus the next-token loss over every row (what the PyTorch peer's
// forward computes), for stories260K and SmolLM2-135M's shape per weight dtype.
//
// Counters:
//   tokens/s       rows through the model per second
//   GFLOP/s        2·(matmul MACs) per forward, attention included, / time
//   f32gemm_GFLOP/s  the rate of an Eigen f32 GEMM doing the same matrix products
//                  at m = 1024 (every projection shape plus the output layer),
//                  measured in this process: the fp32 baseline of this run
//   vs_f32_gemm    GFLOP/s ÷ f32gemm_GFLOP/s
//   fma_peak_GFLOP/s  this machine's f32 FMA peak on as many threads (bench/fma_peak.h)
//   vs_peak        GFLOP/s ÷ fma_peak_GFLOP/s
//
// Models: stories260K from ../shared (ZEROTH_SHARED), quantized on load;
// SmolLM2-135M-Instruct Q4_1 from the model cache (scripts/get-models) when
// present; and random weights of SmolLM2's shape in f32/q8_0/q4_0/q4_1/nf4,
// with f32 embeddings, as a load with --quantize would give.
#include <benchmark/benchmark.h>
#include <cstdint>

#include <fmt/format.h>

#include <Eigen/Core>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include "bench/bench_common.h"
#include "bench/fma_peak.h"
#include "core/parallel.h"
#include "models/loaders/llama_loader.h"

namespace zeroth {
namespace {

namespace fs = std::filesystem;
using bench::cached_smollm2;
using bench::peak_gflops;
using bench::shared_dir;
using bench::smollm2_config;
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kBatch = 16, kSeq = 64;




// One model alive at a time: the benchmarks run in registration order, and the
// 135M f32 model alone is 0.5 GiB.
const LlamaModel& model(const std::string& key, const std::function<LlamaWeights()>& make) {
  static std::string held;
  static std::unique_ptr<LlamaModel> m;
  if (held != key) {
    m.reset();
    m = std::make_unique<LlamaModel>(make(), default_threads());
    held = key;
  }
  return *m;
}

struct Batch {
  TokenBatch tokens;
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
};

// Random token ids (fixed seed), every row predicting the next token.
Batch random_batch(int64_t vocab) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(vocab) - 1);
  Batch b;
  for (int64_t s = 0; s < kBatch; ++s) {
    std::vector<int32_t> ids(kSeq + 1);
    for (auto& t : ids) t = tok(rng);
    const int64_t start = b.tokens.rows();
    b.tokens.add({ids.begin(), ids.end() - 1});
    for (int64_t t = 0; t < kSeq; ++t) {
      b.rows.push_back(start + t);
      b.targets.push_back(ids[size_t(t) + 1]);
    }
  }
  return b;
}

// The (n, k) matrix products of one forward with their FLOPs at m rows.
std::map<std::pair<int64_t, int64_t>, int64_t> gemm_shapes(const LlamaConfig& c) {
  std::map<std::pair<int64_t, int64_t>, int64_t> count;  // (n, k) -> times per forward
  count[{c.q_dim(), c.dim}] += c.n_layers;
  count[{c.kv_dim(), c.dim}] += 2 * c.n_layers;
  count[{c.dim, c.q_dim()}] += c.n_layers;
  count[{c.hidden_dim, c.dim}] += 2 * c.n_layers;
  count[{c.dim, c.hidden_dim}] += c.n_layers;
  count[{c.vocab_size, c.dim}] += 1;
  return count;
}

double forward_flops(const LlamaConfig& c) {
  const double rows = double(kBatch * kSeq);
  double f = 0;
  for (const auto& [nk, times] : gemm_shapes(c)) f += 2.0 * rows * double(nk.first * nk.second * times);
  // causal attention: scores and weighted values over positions 0..p per head
  const double pairs = double(kBatch) * double(kSeq * (kSeq + 1) / 2);
  f += 2.0 * 2.0 * pairs * double(c.n_heads * c.hd()) * double(c.n_layers);
  return f;
}

// Eigen f32 GFLOP/s over the forward's GEMM mix at m = 1024: each shape timed
// (best of a few after a warm-up), summed with its count. Cached per config.
double f32_gemm_gflops(const LlamaConfig& c) {
  static std::map<std::string, double> cache;
  const std::string key = c.describe();
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  Eigen::setNbThreads(default_threads());
  const int64_t m = kBatch * kSeq;
  double flops = 0, secs = 0;
  for (const auto& [nk, times] : gemm_shapes(c)) {
    const auto [n, k] = nk;
    RowMajor x = RowMajor::Random(m, k), w = RowMajor::Random(n, k), y(m, n);
    double best = 1e30, total = 0;
    for (int rep = 0; rep < 20 && (rep < 3 || total < 0.3); ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      y.noalias() = x * w.transpose();
      benchmark::DoNotOptimize(y.data());
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rep > 0) best = std::min(best, s);
      total += s;
    }
    flops += 2.0 * double(m * n * k * times);
    secs += best * double(times);
  }
  return cache[key] = flops / secs * 1e-9;
}

void BM_forward(benchmark::State& state, std::string key, std::function<LlamaWeights()> make) {
  const LlamaModel& m = model(key, make);
  const Batch b = random_batch(m.config().vocab_size);
  const double baseline = f32_gemm_gflops(m.config());
  double loss = 0;
  for (auto _ : state) {
    const auto lp = m.token_logprobs(m.forward_hidden(b.tokens), b.rows, b.targets);
    loss = -double(lp[0]);
    benchmark::DoNotOptimize(lp.data());
  }
  const double gflop = forward_flops(m.config()) * 1e-9;
  state.counters["tokens/s"] = benchmark::Counter(double(b.tokens.rows()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["f32gemm_GFLOP/s"] = baseline;
  state.counters["vs_f32_gemm"] = benchmark::Counter(gflop / baseline, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["fma_peak_GFLOP/s"] = peak_gflops();
  state.counters["vs_peak"] = benchmark::Counter(gflop / peak_gflops(), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_MiB"] = double(m.weights().weight_bytes()) / (1 << 20);
  state.SetLabel(fmt::format("first-row NLL {:.3f}", loss));
}

void add(const std::string& name, std::function<LlamaWeights()> make, double min_time) {
  benchmark::RegisterBenchmark(("forward/" + name).c_str(), BM_forward, name, std::move(make))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MinTime(min_time);
}

const bool kRegistered = [] {
  const char* dtypes[] = {"f32", "q8_0", "q4_0", "q4_1", "nf4"};
  if (const std::string shared = shared_dir(); !shared.empty()) {
    const std::string bin = shared + "/models/stories260K/stories260K.bin";
    for (const char* d : dtypes)
      add(std::string("stories260K/") + d, [bin, d] {
        LoadOptions o;
        if (std::string(d) != "f32") o.quantize = parse_dtype(d);
        return load_llama_weights(bin, o);
      }, 0.5);
  }
  if (const std::string gguf = cached_smollm2(); !gguf.empty())
    add("smollm2-135m-file/q4_1", [gguf] { return load_llama_weights(gguf); }, 3.0);
  for (const char* d : dtypes)
    add(std::string("random-135m/") + d, [d] {
      LlamaWeights w = make_random_llama(smollm2_config(), 1, DType::F32);
      LoadOptions o;
      if (std::string(d) != "f32") o.quantize = parse_dtype(d);
      finish_loaded_weights(w, o);  // projections quantized, embedding stays f32
      return w;
    }, 3.0);
  return true;
}();

}  // namespace
}  // namespace zeroth
