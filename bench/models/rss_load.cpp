// Resident memory of a loaded model, one measurement per process so that the
// peak (VmHWM) belongs to this model alone. Prints one JSON line.
//
//   rss_load MODEL [--quantize DT] [--forward B S] [--threads N]
//   rss_load --random-135m DT [--forward B S]     (SmolLM2's shape, random weights)
//
// Weights read from a GGUF stay views of the mapped file, so right after
// loading RSS counts only the pages touched so far (metadata, and tensors
// converted on load); a forward touches every weight page. --forward runs one
// batched forward plus the next-token loss over all rows, as the PyTorch peer's
// forward does, and reports the peak after it as well.
#include <cstdint>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "bench/bench_common.h"
#include "core/quant/quant.h"
#include "models/loaders/llama_loader.h"

namespace zeroth {
namespace {



int run(int argc, char** argv) {
  std::string model, random_dtype;
  LoadOptions opt;
  int64_t batch = 0, seq = 0;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quantize" && i + 1 < argc) opt.quantize = parse_dtype(argv[++i]);
    else if (a == "--random-135m" && i + 1 < argc) random_dtype = argv[++i];
    else if (a == "--forward" && i + 2 < argc) { batch = std::atol(argv[++i]); seq = std::atol(argv[++i]); }
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!a.empty() && a[0] != '-' && model.empty()) model = a;
    else {
      fmt::print(stderr, "usage: rss_load MODEL [--quantize DT] [--forward B S] | --random-135m DT [--forward B S]\n");
      return 2;
    }
  }
  if (model.empty() == random_dtype.empty()) {
    fmt::print(stderr, "rss_load: give either MODEL or --random-135m DT\n");
    return 2;
  }
  opt.threads = threads;
  const auto [rss0, hwm0] = bench::rss_mib();
  nlohmann::json j;
  LlamaWeights w;
  if (!model.empty()) {
    w = load_llama_weights(model, opt);
    j["model"] = model;
    j["file_mib"] = double(std::filesystem::file_size(model)) / (1 << 20);
  } else {
    const auto dt = parse_dtype(random_dtype);
    if (!dt) throw std::runtime_error("unknown dtype " + random_dtype);
    // f32 weights quantized like a load would: projections only, embedding f32.
    w = make_random_llama(bench::smollm2_config(), 1, DType::F32);
    LoadOptions q;
    q.quantize = *dt;
    finish_loaded_weights(w, q);
    j["model"] = "random-135m/" + random_dtype;
  }
  j["quantize"] = opt.quantize ? std::string(dtype_name(*opt.quantize)) : "";
  j["weight_mib"] = double(w.weight_bytes()) / (1 << 20);
  LlamaModel m(std::move(w), threads);
  const auto [rss1, hwm1] = bench::rss_mib();
  j["rss_start_mib"] = rss0;
  j["rss_after_load_mib"] = rss1;
  j["peak_after_load_mib"] = hwm1;
  if (batch > 0) {
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> tok(0, int32_t(m.config().vocab_size) - 1);
    TokenBatch b;
    std::vector<int64_t> rows;
    std::vector<int32_t> targets;
    for (int64_t s = 0; s < batch; ++s) {
      std::vector<int32_t> ids(size_t(seq) + 1);
      for (auto& t : ids) t = tok(rng);
      const int64_t start = b.rows();
      b.add({ids.begin(), ids.end() - 1});
      for (int64_t t = 0; t < seq; ++t) {
        rows.push_back(start + t);
        targets.push_back(ids[size_t(t) + 1]);
      }
    }
    const auto lp = m.token_logprobs(m.forward_hidden(b), rows, targets);
    double nll = 0;
    for (float v : lp) nll -= double(v);
    const auto [rss2, hwm2] = bench::rss_mib();
    j["forward"] = fmt::format("{}x{}", batch, seq);
    j["loss"] = nll / double(lp.size());
    j["rss_after_forward_mib"] = rss2;
    j["peak_after_forward_mib"] = hwm2;
  }
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace
}  // namespace zeroth

int main(int argc, char** argv) { return zeroth::bench::guarded_main("rss_load", zeroth::run, argc, argv); }
