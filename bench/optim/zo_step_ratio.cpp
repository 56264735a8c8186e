// What a zeroth-order step costs against a plain forward over the same
// sequences, and against MeZO's own way of running it, all in one process on
// one model and one batch, interleaved rep by rep so that noise from other
// processes on the machine hits every mode alike. Prints one JSON line.
//
//   zo_step_ratio [--model smollm2|random-135m|random-1b|random-7b|stories260K|PATH]
//                 [--quantize DT] [--task lm|classification] [--q 2] [--batch 4]
//                 [--seq 48] [--reps 5] [--threads N] [--no-naive] [--only-step]
//                 [--device cpu|cuda] [--precision f32|tf32|bf16]
//   --device cuda runs every mode through the GPU model (models/llama_cuda.h)
//   with GEMMs in --precision, and adds the device figures: forward tokens/s,
//   achieved TFLOP/s against the H100's 989 dense bf16, and GPU memory (the
//   driver's count, less what this process held before loading) after the
//   upload, after a plain forward, and after a step: MeZO's claim is that the
//   last two are equal. The 7B figure is set against QLoRA's published 5 GB
//   for its 4-bit 7B model (Dettmers et al. 2023).
//   --only-step runs the step alone (for perf record: the profile is the step's)
//   --eigen-threads N: threads Eigen may use for the LoRA products (default:
//   Eigen's own, all OpenMP threads), to see what its threading costs
//
// Modes (each over q perturbations × B samples of T tokens, 2q·B sequences):
//   step      zo_member_step (one member, central differences, one-byte
//             records): the 2q variants in ONE batched forward; then the
//             update (ZerothOrderOptimizer::apply of its records), timed apart
//   fwd       BatchScorer without adapters over the identical 2q·B sequences:
//             the base model's forward plus the same loss (the denominator)
//   fwd_lora  the same with the unperturbed LoRA θ on every sequence, split
//             into the same 2q variant ranges: what the LoRA products alone
//             cost, so step − fwd_lora is the price of perturbing
//   naive     MeZO as princeton-nlp/MeZO runs it, per perturbation k:
//             θ += εz_k, forward over the B samples, θ −= 2εz_k, forward,
//             θ += εz_k (restore), regenerating z_k from its key in each pass;
//             then one update with the q gradients: 2q forwards of B
//             sequences each instead of one batched forward
//
// Figures: medians over the reps; step_over_fwd (target ≤ 1.10),
// naive_over_fwd, and step_over_naive (both with the update included).
#include <cstdint>
#include <fmt/format.h>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "bench/bench_common.h"
#include "core/backend.h"
#include "core/cuda_matmul.h"
#include "core/parallel.h"
#include "models/llama_cuda.h"
#include "optim/update.h"
#include "optim/zo_step.h"

namespace zeroth {
namespace {

using bench::median;
using bench::seconds_since;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string model = "smollm2", quantize, task = "lm", device = "cpu", precision = "f32";
  int q = 2, reps = 5, threads = 0;
  int64_t batch = 4, seq = 48;
  bool naive = true, only_step = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&] { return bench::flag_value(argc, argv, i); };
    if (s == "--model") a.model = next();
    else if (s == "--quantize") a.quantize = next();
    else if (s == "--task") a.task = next();
    else if (s == "--q") a.q = std::stoi(next());
    else if (s == "--batch") a.batch = std::stol(next());
    else if (s == "--seq") a.seq = std::stol(next());
    else if (s == "--reps") a.reps = std::stoi(next());
    else if (s == "--threads") a.threads = std::stoi(next());
    else if (s == "--no-naive") a.naive = false;
    else if (s == "--eigen-threads") Eigen::setNbThreads(std::stoi(next()));
    else if (s == "--only-step") a.only_step = true, a.naive = false;
    else if (s == "--device") a.device = next();
    else if (s == "--precision") a.precision = next();
    else throw std::runtime_error("unknown argument " + s + " (see the header of bench/optim/zo_step_ratio.cpp)");
  }
  if (a.q < 1 || a.batch < 1 || a.seq < 2 || a.reps < 1) throw std::runtime_error("q, batch, reps >= 1 and seq >= 2");
  if (a.device != "cpu" && a.device != "cuda") throw std::runtime_error("--device must be cpu or cuda");
  return a;
}

// θ += c·z_k over every tensor of the set, z regenerated from the key per
// tensor (MeZO's torch.manual_seed(seed) + normal per parameter, one pass).
void perturb_in_place(const LoraTrainable& lora, const PerturbationKey& key, Distribution d, float c,
                      std::vector<float>& z) {
  int64_t offset = 0;
  for (const auto& t : lora.set().tensors()) {
    z.resize(size_t(t.n));
    generate_z(key, d, offset, offset + t.n, z.data());
    for (int64_t i = 0; i < t.n; ++i) t.data[i] += c * z[size_t(i)];
    offset += t.n;
  }
}

constexpr double kH100Bf16Tflops = 989.0;  // dense, SXM
constexpr double kQloraGuanaco7bGB = 5.0;  // QLoRA (Dettmers et al. 2023): "Guanaco 7B ... requires just 5 GB"

// FLOPs of one forward over `batch`: 2·rows per weight of every projection,
// the causal attention's QKᵀ and PV (half the square per sequence), and the
// output layer over `logit_rows` rows.
double forward_flops(const LlamaConfig& c, const TokenBatch& batch, int64_t logit_rows) {
  const double proj = double(c.dim) * double(2 * c.q_dim() + 2 * c.kv_dim()) + 3.0 * double(c.dim) * double(c.hidden_dim);
  double attn = 0;
  for (const auto& s : batch.seqs) attn += 2.0 * double(s.length) * double(s.length + 1) * double(c.q_dim());
  return double(c.n_layers) * (2.0 * double(batch.rows()) * proj + attn) +
         2.0 * double(logit_rows) * double(c.vocab_size) * double(c.dim);
}

double gib(size_t bytes) { return double(bytes) / double(1ull << 30); }

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::string label;
  const bool gpu = a.device == "cuda";
  const size_t gpu_before = gpu ? cuda_memory_info().used() : 0;  // other processes, this context
  LlamaModel host_model(bench::load_bench_model(a.model, a.quantize, label), a.threads);
  std::unique_ptr<LlamaCuda> cuda_model;
  if (gpu) {
    LlamaCudaOptions o;
    o.precision = parse_gemm_precision(a.precision, "--precision");
    cuda_model = std::make_unique<LlamaCuda>(host_model, o);
    label += " cuda " + a.precision;
  }
  const CausalLM& model = gpu ? static_cast<const CausalLM&>(*cuda_model) : host_model;
  const size_t gpu_weights = gpu ? cuda_memory_info().used() - gpu_before : 0;
  size_t gpu_after_fwd = 0, gpu_after_step = 0;
  const int threads = a.threads > 0 ? a.threads : default_threads();
  const bench::BenchTask bt = bench::make_bench_task(a.task, model.vocab_size(), a.batch, a.seq);
  const Task& task = *bt.task;
  const auto& train = task.examples(Split::Train);

  LoraConfig lcfg;  // r 8, alpha 16 on q and v: the peer's mezo_lora setting
  LoraTrainable lora(lcfg, host_model);
  lora.initialize(11);
  OptimizerConfig ocfg;
  ocfg.lr = 1e-5f;
  ocfg.run_seed = 5;
  ZerothOrderOptimizer opt(ocfg, lora.set(), threads);
  ZoConfig zc;
  zc.q = a.q;
  zc.samples = int(a.batch);
  zc.eps = 1e-3f;
  const float codec_scale = 1.0f;

  // The identical 2q·B sequences for the forwards: every train example once
  // per variant (a step with B == |train| draws each example exactly once).
  const int32_t n_variants = 2 * a.q;
  BatchScorer plain(task);
  for (int32_t v = 0; v < n_variants; ++v)
    for (const Example& e : train) plain.add(e, v);

  uint64_t step = 0;
  double last_loss = 0;
  std::vector<double> t_step, t_apply, t_fwd, t_fwd_lora, t_naive, t_naive_fwd, t_naive_perturb;
  std::vector<float> z;
  const int total = a.reps + 1;  // the first rep warms caches and the allocator, untimed
  for (int rep = 0; rep < total; ++rep) {
    const bool timed = rep > 0;
    if (gpu && rep == 0) {
      // Device memory of inference first (a plain forward over the same rows),
      // then of the step: buffers are kept, so each count is that pass's peak.
      plain.run(model);
      gpu_after_fwd = cuda_memory_info().used() - gpu_before;
    }
    // step: one batched forward over the 2q variants, then the update
    auto t0 = Clock::now();
    const MemberStepResult r = zo_member_step(model, task, lora, zc, ocfg.run_seed, 0, step, 0, 1, codec_scale);
    const double s_step = seconds_since(t0);
    if (gpu && rep == 0) gpu_after_step = cuda_memory_info().used() - gpu_before;
    StepEntry entry;
    entry.step = step;
    entry.scale = codec_scale;
    entry.lr = ocfg.lr;
    entry.records = r.records;
    t0 = Clock::now();
    opt.apply(entry);
    const double s_apply = seconds_since(t0);
    last_loss = r.loss;
    ++step;

    if (a.only_step) {
      if (timed) t_step.push_back(s_step);
      continue;
    }
    t0 = Clock::now();
    const auto rf = plain.run(model);
    const double s_fwd = seconds_since(t0);

    t0 = Clock::now();
    const auto rl = plain.run(model, &lora.adapters());
    const double s_fwd_lora = seconds_since(t0);
    (void)rf; (void)rl;

    double s_naive = 0, s_naive_fwd = 0, s_naive_perturb = 0;
    if (a.naive) {
      const auto t_begin = Clock::now();
      BatchScorer one(task);
      for (const Example& e : train) one.add(e, 0);
      StepEntry ne;
      ne.step = step;
      ne.scale = codec_scale;
      ne.lr = ocfg.lr;
      for (int k = 0; k < a.q; ++k) {
        const PerturbationKey key{ocfg.run_seed, uint32_t(step), 0, uint32_t(k)};
        auto timed_perturb = [&](float c) {
          const auto tp = Clock::now();
          perturb_in_place(lora, key, zc.distribution, c, z);
          s_naive_perturb += seconds_since(tp);
        };
        auto timed_forward = [&] {
          const auto tf = Clock::now();
          const double l = one.run(model, &lora.adapters()).loss[0];
          s_naive_fwd += seconds_since(tf);
          return l;
        };
        timed_perturb(zc.eps);
        const double lp = timed_forward();
        timed_perturb(-2.0f * zc.eps);
        const double lm = timed_forward();
        timed_perturb(zc.eps);
        const float g = float((lp - lm) / (2.0 * double(zc.eps)));
        const Encoded e = encode_gradient(g, codec_scale, key);
        if (e.status != EncodeStatus::NonFinite) ne.records.push_back({0, uint32_t(k), e.code});
      }
      opt.apply(ne);  // the update pass (z regenerated inside apply)
      ++step;
      s_naive = seconds_since(t_begin);
    }
    if (timed) {
      t_step.push_back(s_step);
      t_apply.push_back(s_apply);
      t_fwd.push_back(s_fwd);
      t_fwd_lora.push_back(s_fwd_lora);
      if (a.naive) {
        t_naive.push_back(s_naive);
        t_naive_fwd.push_back(s_naive_fwd);
        t_naive_perturb.push_back(s_naive_perturb);
      }
    }
  }

  if (a.only_step) {
    fmt::print("{{\"model\":\"{}\",\"step_s\":{}}}\n", label, median(t_step));
    return 0;
  }
  const double step_s = median(t_step), apply_s = median(t_apply), fwd_s = median(t_fwd),
               fwd_lora_s = median(t_fwd_lora);
  // Per-rep ratios too: their median is less sensitive to one slow rep than a
  // ratio of medians when the machine is shared.
  std::vector<double> per_rep;
  for (size_t i = 0; i < t_step.size(); ++i) per_rep.push_back(t_step[i] / t_fwd[i]);
  nlohmann::json j;
  j["model"] = label;
  j["task"] = a.task;
  j["q"] = a.q;
  j["batch"] = a.batch;
  j["seq"] = a.seq;
  j["sequences"] = n_variants * a.batch;
  j["rows"] = plain.rows();
  j["threads"] = threads;
  j["reps"] = a.reps;
  j["lora_params"] = lora.set().size();
  j["loss"] = last_loss;
  j["step_s"] = step_s;
  j["apply_s"] = apply_s;
  j["fwd_s"] = fwd_s;
  j["fwd_lora_s"] = fwd_lora_s;
  j["step_over_fwd"] = step_s / fwd_s;
  j["step_over_fwd_per_rep_median"] = median(per_rep);
  j["step_apply_over_fwd"] = (step_s + apply_s) / fwd_s;
  j["fwd_lora_over_fwd"] = fwd_lora_s / fwd_s;
  j["step_min_s"] = *std::min_element(t_step.begin(), t_step.end());
  j["fwd_min_s"] = *std::min_element(t_fwd.begin(), t_fwd.end());
  if (gpu) {
    // The plain forward's rows: every token; logits on all but each sequence's last.
    TokenBatch tb;
    int64_t logit_rows = 0;
    for (int32_t v = 0; v < n_variants; ++v)
      for (const Example& e : train) {
        tb.add(e.tokens, v);
        logit_rows += int64_t(e.tokens.size()) - 1;
      }
    const double flops = forward_flops(host_model.config(), tb, logit_rows);
    j["device"] = cuda_describe();
    j["precision"] = a.precision;
    j["fwd_tokens_per_s"] = double(tb.rows()) / fwd_s;
    j["fwd_tflops"] = flops / fwd_s / 1e12;
    j["fwd_of_989"] = flops / fwd_s / 1e12 / kH100Bf16Tflops;
    j["step_tokens_per_s"] = double(tb.rows()) / step_s;
    j["gpu_weights_gib"] = gib(gpu_weights);
    j["gpu_fwd_gib"] = gib(gpu_after_fwd);
    j["gpu_step_gib"] = gib(gpu_after_step);
    j["gpu_step_over_fwd_memory"] = double(gpu_after_step) / double(std::max<size_t>(1, gpu_after_fwd));
    j["gpu_step_gb_over_qlora_7b_5gb"] = double(gpu_after_step) / 1e9 / kQloraGuanaco7bGB;
  }
  if (a.naive) {
    const double naive_s = median(t_naive);
    j["naive_s"] = naive_s;
    j["naive_fwd_s"] = median(t_naive_fwd);
    j["naive_perturb_s"] = median(t_naive_perturb);
    j["naive_over_fwd"] = naive_s / fwd_s;
    j["step_over_naive"] = (step_s + apply_s) / naive_s;
  }
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace
}  // namespace zeroth

int main(int argc, char** argv) { return zeroth::bench::guarded_main("zo_step_ratio", zeroth::run, argc, argv); }
