// Pieces the benchmark programs share: where the models are (../shared, the
// model cache), SmolLM2-135M's shape, which model to load, the random batch the
// ZO-step programs score, and small timing/RSS helpers. Kept in one header so
// the step, the forward and the peak-RSS figures are measured on exactly the
// same model and sequences.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/quant/quant.h"
#include "core/sysmem.h"
#include "models/loaders/llama_loader.h"
#include "models/tasks/task.h"

namespace zeroth::bench {

namespace fs = std::filesystem;

inline std::string shared_dir() {
  const char* env = std::getenv("ZEROTH_SHARED");
  const fs::path p = env ? env : ZEROTH_SHARED_DIR;
  return fs::is_directory(p) ? p.string() : std::string();
}

// SmolLM2-135M-Instruct Q4_1 in the model cache (scripts/get-models), or "".
inline std::string cached_smollm2() {
  fs::path dir;
  if (const char* c = std::getenv("ZEROTH_CACHE"); c && *c) dir = fs::path(c) / "models";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = fs::path(h) / ".cache/zeroth/models";
  const fs::path p = dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
  return !dir.empty() && fs::is_regular_file(p) ? p.string() : std::string();
}

inline LlamaConfig smollm2_config() {
  LlamaConfig c;
  c.dim = 576; c.hidden_dim = 1536; c.n_layers = 30; c.n_heads = 9; c.n_kv_heads = 3; c.vocab_size = 49152;
  c.max_seq_len = 2048; c.rope_theta = 100000.0; c.tie_embeddings = true;
  return c;
}

// The larger LLaMA shapes of the GPU figures: TinyLlama-1.1B and Llama-2-7B.
inline LlamaConfig tinyllama_config() {
  LlamaConfig c;
  c.dim = 2048; c.hidden_dim = 5632; c.n_layers = 22; c.n_heads = 32; c.n_kv_heads = 4; c.vocab_size = 32000;
  c.max_seq_len = 2048; c.tie_embeddings = false;
  return c;
}
inline LlamaConfig llama2_7b_config() {
  LlamaConfig c;
  c.dim = 4096; c.hidden_dim = 11008; c.n_layers = 32; c.n_heads = 32; c.n_kv_heads = 32; c.vocab_size = 32000;
  c.max_seq_len = 4096; c.tie_embeddings = false;
  return c;
}

// `name`: smollm2 (the cached Q4_1 file, else random weights of its shape in
// q4_1 with an f32 embedding, as a load with --quantize q4_1 gives),
// random-135m (always the random one), random-1b / random-7b (TinyLlama /
// Llama-2 shapes, make_random_llama_parallel, nf4 unless `quantize`), stories260K (../shared, f32 unless
// `quantize`), or a model path. `label` says which one was actually loaded.
inline LlamaWeights load_bench_model(const std::string& name, const std::string& quantize, std::string& label) {
  LoadOptions o;
  if (!quantize.empty()) {
    o.quantize = parse_dtype(quantize);
    if (!o.quantize) throw std::runtime_error("unknown dtype " + quantize);
  }
  std::string path;
  if (name == "smollm2") path = cached_smollm2();
  else if (name == "stories260K") {
    const std::string s = shared_dir();
    if (s.empty()) throw std::runtime_error("stories260K: ../shared not found (set ZEROTH_SHARED)");
    path = s + "/models/stories260K/stories260K.bin";
  } else if (name == "random-1b" || name == "random-7b") {
    const std::string dt = quantize.empty() ? "nf4" : quantize;
    const auto t = parse_dtype(dt);
    if (!t) throw std::runtime_error("unknown dtype " + dt);
    label = name + "/" + dt;
    // The embedding and output layer in bf16, as QLoRA keeps them.
    return make_random_llama_parallel(name == "random-1b" ? tinyllama_config() : llama2_7b_config(), 1, *t,
                                      DType::BF16);
  } else if (name != "random-135m") {
    path = name;
  }
  if (!path.empty()) {
    label = name == "smollm2" ? "smollm2-135m-file/q4_1" : name + (quantize.empty() ? "" : "/" + quantize);
    return load_llama_weights(path, o);
  }
  const std::string dt = quantize.empty() ? "q4_1" : quantize;
  LlamaWeights w = make_random_llama(smollm2_config(), 1, DType::F32);
  LoadOptions q;
  q.quantize = parse_dtype(dt);
  finish_loaded_weights(w, q);  // projections quantized, embedding stays f32
  label = "random-135m/" + dt;
  return w;
}

// `count` examples of `seq` random tokens (fixed seed). lm: the loss is on
// every next token; classification: the sequence is the prompt and the label
// (two single-token words) alternates, as in MeZO's SST-2 setting.
struct BenchTask {
  std::unique_ptr<Task> task;
  std::string type;
};
inline BenchTask make_bench_task(const std::string& type, int64_t vocab, int64_t count, int64_t seq) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(vocab) - 1);
  std::vector<Example> train;
  for (int64_t i = 0; i < count; ++i) {
    Example e;
    e.tokens.resize(size_t(seq));
    for (auto& t : e.tokens) t = tok(rng);
    if (type == "classification") e.label = int32_t(i % 2);
    train.push_back(std::move(e));
  }
  TaskConfig cfg;
  cfg.type = type;
  cfg.max_length = seq + 4;
  std::vector<std::vector<int32_t>> words;
  if (type == "classification") {
    cfg.label_words = {{"0", " terrible"}, {"1", " great"}};
    words = {{tok(rng)}, {tok(rng)}};
  } else if (type != "lm") {
    throw std::runtime_error("--task must be lm or classification, got " + type);
  }
  // Dev/test hold one copy each: the task requires non-empty splits.
  std::vector<Example> dev{train.front()}, test{train.front()};
  return {make_task_from_examples(cfg, std::move(train), std::move(dev), std::move(test), std::move(words)), type};
}

// {VmRSS, VmHWM} of this process in MiB, from /proc/self/status.
inline std::pair<double, double> rss_mib() {
  const zeroth::ProcessMemory m = zeroth::process_memory();
  return {double(m.rss) / 1048576.0, double(m.peak) / 1048576.0};
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The value after the flag argv[i] (i advances past it); an error naming the
// flag when the command line ends first.
inline std::string flag_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) throw std::runtime_error(std::string(argv[i]) + " needs a value");
  return argv[++i];
}

// The flags the model benchmark programs share (each sets its own defaults):
// --mode --model --quantize --task --q --batch --seq --iters --threads.
struct ModelBenchFlags {
  std::string mode, model, quantize, task = "lm";
  int q = 2, iters = 3, threads = 0;
  int64_t batch = 4, seq = 48;
  // Takes argv[i] (and its value, advancing i) when it is one of these flags.
  bool take(int argc, char** argv, int& i) {
    const std::string s = argv[i];
    auto next = [&] { return flag_value(argc, argv, i); };
    if (s == "--mode") mode = next();
    else if (s == "--model") model = next();
    else if (s == "--quantize") quantize = next();
    else if (s == "--task") task = next();
    else if (s == "--q") q = std::stoi(next());
    else if (s == "--batch") batch = std::stol(next());
    else if (s == "--seq") seq = std::stol(next());
    else if (s == "--iters") iters = std::stoi(next());
    else if (s == "--threads") threads = std::stoi(next());
    else return false;
    return true;
  }
  // The run's description in a result line; `label` names the loaded model.
  nlohmann::json json(const std::string& label) const {
    return {{"mode", mode}, {"model", label}, {"task", task}, {"q", q}, {"batch", batch}, {"seq", seq}};
  }
};

// A benchmark program's main: run(argc, argv), or "NAME: what went wrong" on
// stderr and exit status 1.
inline int guarded_main(const char* name, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace zeroth::bench
