// `zeroth quantize` over a LLaMA model (see quantize_llama.h). Matrices are
// independent: each phase runs over them in parallel (dynamic schedule, one
// matrix per task; Eigen and the codecs run single-threaded inside).
#include "models/quantize_llama.h"

#include <cstdint>
#include <omp.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/error.h"
#include "core/formats/safetensors.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/quant/budget.h"
#include "core/quant/lq_decompose.h"
#include "core/quant/nfk.h"
#include "core/quant/quant.h"
#include "models/fisher.h"
#include "models/loaders/llama_loader.h"

namespace zeroth {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Runs f(i) for i < n on `threads` threads, one index per task, and rethrows the
// first error here (exceptions cannot leave an OpenMP region).
template <typename F>
void for_each_matrix(int64_t n, int threads, F&& f) {
  std::mutex mu;
  std::exception_ptr first;
  if (threads <= 0) threads = default_threads();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

struct Job {
  int layer;
  Proj proj;
  int64_t rows, cols;
  std::vector<DType> candidates;  // empty: kept as loaded
};

// The f32 matrix of a job, q/k rows in HF rotate-half order.
std::vector<float> matrix_f32(const LlamaWeights& w, const Job& j, bool interleaved) {
  const Tensor t = dequantize(w.layers[size_t(j.layer)].proj(j.proj), 1);
  std::vector<float> v(t.data<float>(), t.data<float>() + t.numel());
  if (interleaved && (j.proj == Proj::Q || j.proj == Proj::K))
    v = interleaved_to_rotate_half_rows(v.data(), j.rows, j.cols,
                                        j.proj == Proj::Q ? w.config.n_heads : w.config.n_kv_heads);
  return v;
}

double sq_error(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += double(a[i] - b[i]) * double(a[i] - b[i]);
  return e;
}

// Σ ρ_i γ_j (a − b)_ij² over (m, n) row-major; plain sq_error when unweighted.
double weighted_sq_error(const std::vector<float>& a, const std::vector<float>& b, int64_t m, int64_t n,
                         const LqOptions& lo) {
  if (lo.row_weights.empty() && lo.col_weights.empty()) return sq_error(a, b);
  double e = 0;
  for (int64_t i = 0; i < m; ++i) {
    double r = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double d = double(a[size_t(i * n + j)] - b[size_t(i * n + j)]);
      r += (lo.col_weights.empty() ? 1.0 : double(lo.col_weights[size_t(j)])) * d * d;
    }
    e += (lo.row_weights.empty() ? 1.0 : double(lo.row_weights[size_t(i)])) * r;
  }
  return e;
}

std::string fmt_bits(double b) { return fmt::format("{:.3f}", b); }

}  // namespace

void QuantizeOptions::validate() const {
  ZEROTH_CHECK(method == "nf4" || method == "int4" || method == "int8" || method == "lq-lora",
               "--method {}: unknown method; use nf4, int4, int8 or lq-lora", method);
  ZEROTH_CHECK(rank >= 0 && rank <= 4096, "--rank {}: must be in 0..4096", rank);
  ZEROTH_CHECK(std::isfinite(budget_bits) && budget_bits > 0 && budget_bits <= 32,
               "--budget-bits {}: must be a positive number of bits per parameter", budget_bits);
  ZEROTH_CHECK(max_iters >= 1 && max_iters <= 1000, "--max-iters {}: must be in 1..1000", max_iters);
  ZEROTH_CHECK(score_iters >= 1 && score_iters <= max_iters, "--score-iters {}: must be in 1..--max-iters ({})",
               score_iters, max_iters);
  ZEROTH_CHECK(power_iters >= 0 && power_iters <= 20, "--power-iters {}: must be in 0..20", power_iters);
}

QuantizeReport quantize_llama(LlamaWeights& w, const QuantizeOptions& opt_in, const FisherStats* fisher) {
  opt_in.validate();
  QuantizeOptions opt = opt_in;
  const bool lq = opt.method == "lq-lora";
  if (!lq) opt.rank = 0;
  const bool interleaved = w.config.rope_interleaved;
  QuantizeReport rep;
  rep.options = opt;

  // The candidate formats of every projection: those whose blocks split its rows.
  std::vector<Job> jobs;
  const DType fixed = opt.method == "nf4" ? DType::NF4 : opt.method == "int4" ? DType::I4_B32 : DType::I8_B64;
  for (int l = 0; l < int(w.layers.size()); ++l)
    for (int pi = 0; pi < kProjCount; ++pi) {
      const Tensor& t = w.layers[size_t(l)].proj(Proj(pi));
      Job j{l, Proj(pi), t.dim(0), t.dim(1), {}};
      for (DType d : lq ? nf_family() : std::vector<DType>{fixed})
        if (j.cols % dtype_info(d).block_elems == 0) j.candidates.push_back(d);
      if (!j.candidates.empty() && opt.rank > std::min(j.rows, j.cols))
        fail("--rank {} is larger than layer {} {} ({} x {}) allows; use --rank {} or less", opt.rank, l,
             proj_name(Proj(pi)), j.rows, j.cols, std::min(j.rows, j.cols));
      jobs.push_back(std::move(j));
    }
  rep.matrices.resize(jobs.size());
  std::vector<int64_t> eligible;
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto& m = rep.matrices[i];
    m.layer = jobs[i].layer;
    m.proj = jobs[i].proj;
    m.rows = jobs[i].rows;
    m.cols = jobs[i].cols;
    if (jobs[i].candidates.empty()) {
      m.kept = true;
      m.format = std::string(dtype_name(w.layers[size_t(m.layer)].proj(m.proj).dtype()));
      rep.kept_params += m.rows * m.cols;
    } else {
      eligible.push_back(int64_t(i));
      rep.quantized_params += m.rows * m.cols;
    }
  }
  ZEROTH_CHECK(!eligible.empty(), "no projection's rows split into the blocks of any {} format; nothing to quantize",
               opt.method);

  LqOptions lo;
  lo.rank = opt.rank;
  lo.max_iters = opt.max_iters;
  lo.power_iters = opt.power_iters;
  lo.seed = opt.seed;
  // Per-matrix options: the Fisher row/column weights (rows permuted like the matrix's).
  ZEROTH_CHECK(!fisher || lq, "Fisher weighting applies to --method lq-lora only (got --method {})", opt.method);
  ZEROTH_CHECK(!fisher || fisher->n_layers == int(w.layers.size()),
               "Fisher statistics of {} layers for a model of {}", fisher ? fisher->n_layers : 0, w.layers.size());
  std::vector<LqOptions> los(jobs.size(), lo);
  if (fisher) {
    rep.fisher_batches = fisher->batches;
    rep.fisher_tokens = fisher->tokens;
    rep.fisher_mean_nll = fisher->mean_loss;
  }
  if (fisher)
    for (int64_t e : eligible) {
      const Job& j = jobs[size_t(e)];
      const ProjectionFisher& f = fisher->at(j.layer, j.proj);
      ZEROTH_CHECK(int64_t(f.row.size()) == j.rows && int64_t(f.col.size()) == j.cols,
                   "Fisher statistics of layer {} {} are {} x {}, the matrix {} x {}", j.layer, proj_name(j.proj),
                   f.row.size(), f.col.size(), j.rows, j.cols);
      auto [rw, cw] = fisher_weights(f, j.layer, j.proj);
      if (interleaved && (j.proj == Proj::Q || j.proj == Proj::K))
        rw = interleaved_to_rotate_half_rows(rw.data(), j.rows, 1,
                                             j.proj == Proj::Q ? w.config.n_heads : w.config.n_kv_heads);
      los[size_t(e)].row_weights = std::move(rw);
      los[size_t(e)].col_weights = std::move(cw);
    }

  // 1. Score: the error of every candidate configuration of every matrix.
  std::vector<DType> chosen(jobs.size(), DType::F32);
  auto t0 = Clock::now();
  if (lq) {
    // The budget must fit every matrix in its cheapest format: checked before any scoring.
    rep.budget_bits = int64_t(std::floor(opt.budget_bits * double(rep.quantized_params)));
    int64_t cheapest = 0;
    for (int64_t e : eligible) {
      const Job& j = jobs[size_t(e)];
      int64_t c = INT64_MAX;
      for (DType d : j.candidates) c = std::min(c, int64_t(row_bytes(d, j.cols)) * 8 * j.rows);
      cheapest += c;
    }
    const double cheapest_bpp = double(cheapest) / double(rep.quantized_params);
    ZEROTH_CHECK(cheapest <= rep.budget_bits, "--budget-bits {} is below the cheapest configuration of these matrices "
                 "({:.4f} bits per parameter, every matrix in its smallest NF format); raise --budget-bits to at least "
                 "{:.4f}", opt.budget_bits, cheapest_bpp, std::ceil(cheapest_bpp * 1e4) / 1e4);
    std::vector<std::vector<BudgetOption>> items(eligible.size());
    for_each_matrix(int64_t(eligible.size()), opt.threads, [&](int64_t e) {
      const Job& j = jobs[size_t(eligible[size_t(e)])];
      const auto W = matrix_f32(w, j, interleaved);
      std::vector<float> target, q(W.size());
      const LqOptions& jo = los[size_t(eligible[size_t(e)])];
      if (opt.score_iters == 1) target = lq_first_target(W.data(), j.rows, j.cols, j.candidates[0], jo);
      for (DType d : j.candidates) {
        double err;
        if (opt.score_iters == 1) {
          fake_quantize(d, target.data(), j.rows, j.cols, q.data());
          err = weighted_sq_error(target, q, j.rows, j.cols, jo);
        } else {
          LqOptions so = jo;
          so.max_iters = opt.score_iters;
          err = lq_decompose(W.data(), j.rows, j.cols, d, so).error;
        }
        items[size_t(e)].push_back({err, int64_t(row_bytes(d, j.cols)) * 8 * j.rows});
      }
    });
    rep.score_seconds = since(t0);
    // 2. Allocate the budget exactly.
    t0 = Clock::now();
    const BudgetSolution sol = allocate_budget(items, rep.budget_bits);
    rep.allocator_unit = sol.unit;
    for (size_t e = 0; e < eligible.size(); ++e) {
      const Job& j = jobs[size_t(eligible[e])];
      chosen[size_t(eligible[e])] = j.candidates[size_t(sol.choice[e])];
    }
    rep.allocate_seconds = since(t0);
  } else {
    for (int64_t e : eligible) chosen[size_t(e)] = jobs[size_t(e)].candidates[0];
  }

  // 3. Decompose each matrix in its chosen format and store Q (+ L1, L2).
  t0 = Clock::now();
  std::vector<Tensor> qs(jobs.size()), l1s(jobs.size()), l2s(jobs.size());
  std::mutex log_mu;
  for_each_matrix(int64_t(eligible.size()), opt.threads, [&](int64_t e) {
    const size_t i = size_t(eligible[size_t(e)]);
    const Job& j = jobs[i];
    const auto W = matrix_f32(w, j, interleaved);
    const LqOptions& jo = los[i];
    const LqResult r = lq_decompose(W.data(), j.rows, j.cols, chosen[i], jo);
    qs[i] = quantize(Tensor::from_vector(r.target, {j.rows, j.cols}), chosen[i], 1);
    auto& m = rep.matrices[i];
    m.format = std::string(dtype_name(chosen[i]));
    m.rank = opt.rank;
    // r.error is in the decomposition's (weighted, with Fisher) norm; the
    // unweighted one from what is stored: target = W − L1·L2, Q = r.q.
    m.error = r.error;
    m.rel_error = r.norm2 > 0 ? r.error / r.norm2 : 0;
    if (fisher) {
      m.fisher_error = r.error;
      m.fisher_rel_error = m.rel_error;
      m.error = sq_error(r.target, r.q);
      double w2 = 0;
      for (float v : W) w2 += double(v) * double(v);
      m.rel_error = w2 > 0 ? m.error / w2 : 0;
    }
    m.iteration_errors = r.errors;
    m.q_bits = int64_t(qs[i].nbytes()) * 8;
    if (opt.rank > 0) {
      l1s[i] = Tensor::from_vector(r.l1, {j.rows, opt.rank});  // B: (out, r)
      l2s[i] = Tensor::from_vector(r.l2, {opt.rank, j.cols});  // A: (r, in)
      m.low_rank_bits = 16 * opt.rank * (j.rows + j.cols);
    }
    if (opt.verbose) {
      std::lock_guard<std::mutex> lock(log_mu);
      fmt::print(stderr, "layer {:>3} {:<4} {:>5} x {:<5} {:<13} rel. error {:.3e} after {} iteration(s)\n", j.layer,
                 proj_name(j.proj), j.rows, j.cols, m.format, m.rel_error, r.iterations);
    }
  });
  rep.decompose_seconds = since(t0);
  for (int64_t e : eligible) {
    const size_t i = size_t(e);
    auto& L = w.layers[size_t(jobs[i].layer)];
    L.proj(jobs[i].proj) = qs[i];
    L.low_rank_b[size_t(jobs[i].proj)] = l1s[i];
    L.low_rank_a[size_t(jobs[i].proj)] = l2s[i];
    rep.q_bits += rep.matrices[i].q_bits;
    rep.low_rank_bits += rep.matrices[i].low_rank_bits;
  }
  // Kept matrices that the permutation touches are stored permuted too.
  for (size_t i = 0; i < jobs.size(); ++i)
    if (rep.matrices[i].kept && interleaved && (jobs[i].proj == Proj::Q || jobs[i].proj == Proj::K))
      w.layers[size_t(jobs[i].layer)].proj(jobs[i].proj) =
          Tensor::from_vector(matrix_f32(w, jobs[i], true), {jobs[i].rows, jobs[i].cols});
  w.config.rope_interleaved = false;
  return rep;
}

json QuantizeReport::to_json() const {
  json mats = json::array();
  for (const auto& m : matrices)
    mats.push_back({{"layer", m.layer}, {"proj", std::string(proj_name(m.proj))}, {"rows", m.rows}, {"cols", m.cols},
                    {"format", m.format}, {"kept", m.kept}, {"rank", m.rank}, {"error", m.error},
                    {"rel_error", m.rel_error}, {"q_bits", m.q_bits}, {"low_rank_bits", m.low_rank_bits},
                    {"iteration_errors", m.iteration_errors}});
  if (fisher_batches > 0)
    for (size_t i = 0; i < matrices.size(); ++i)
      if (!matrices[i].kept) {
        mats[i]["fisher_error"] = matrices[i].fisher_error;
        mats[i]["fisher_rel_error"] = matrices[i].fisher_rel_error;
      }
  json out = {{"method", options.method}, {"rank", options.rank}, {"budget_bits_per_param", options.budget_bits},
          {"max_iters", options.max_iters}, {"score_iters", options.score_iters}, {"power_iters", options.power_iters},
          {"seed", options.seed}, {"quantized_params", quantized_params}, {"kept_params", kept_params},
          {"q_bits", q_bits}, {"low_rank_bits", low_rank_bits}, {"budget_bits", budget_bits},
          {"allocator_unit_bits", allocator_unit}, {"q_bits_per_param", q_bits_per_param()},
          {"total_bits_per_param", total_bits_per_param()}, {"score_seconds", score_seconds},
          {"allocate_seconds", allocate_seconds}, {"decompose_seconds", decompose_seconds}, {"matrices", mats}};
  if (fisher_batches > 0)
    out["fisher"] = {{"calib_batches", fisher_batches}, {"calib_tokens", fisher_tokens},
                     {"calib_mean_nll", fisher_mean_nll}, {"calib_seconds", fisher_seconds}};
  return out;
}

std::string QuantizeReport::table() const {
  std::string s = fmt::format("{:>5} {:<5} {:>11} {:<14} {:>4} {:>10} {:>8} {:>8} {:>5}\n", "layer", "proj", "shape",
                              "format", "rank", "rel.error", "Q bits", "+L bits", "iters");
  for (const auto& m : matrices) {
    const double n = double(m.rows * m.cols);
    s += fmt::format("{:>5} {:<5} {:>11} {:<14} {:>4} {:>10} {:>8} {:>8} {:>5}\n", m.layer, proj_name(m.proj),
                     fmt::format("{}x{}", m.rows, m.cols), m.format + (m.kept ? " (kept)" : ""), m.rank,
                     m.kept ? "-" : fmt::format("{:.3e}", m.rel_error), m.kept ? "-" : fmt_bits(double(m.q_bits) / n),
                     m.kept ? "-" : fmt_bits(double(m.low_rank_bits) / n), m.iteration_errors.size());
  }
  s += fmt::format("quantized {} parameters: Q {:.4f} bits/param, with the low-rank parts {:.4f} bits/param", quantized_params,
                   q_bits_per_param(), total_bits_per_param());
  if (budget_bits > 0) s += fmt::format(" (budget {:.4f} for Q)", options.budget_bits);
  if (kept_params > 0) s += fmt::format("; {} parameters kept as loaded (rows fit no block)", kept_params);
  s += fmt::format("\ntime: score {:.1f} s, allocate {:.2f} s, decompose {:.1f} s\n", score_seconds, allocate_seconds,
                   decompose_seconds);
  return s;
}

json hf_llama_config(const LlamaConfig& c) {
  json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", c.dim},
              {"intermediate_size", c.hidden_dim}, {"num_hidden_layers", c.n_layers},
              {"num_attention_heads", c.n_heads}, {"num_key_value_heads", c.n_kv_heads},
              {"vocab_size", c.vocab_size}, {"max_position_embeddings", c.max_seq_len}, {"rms_norm_eps", c.norm_eps},
              {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tie_embeddings}, {"torch_dtype", "float32"},
              {"head_dim", c.hd()}};
  if (c.rope_scaling.factor > 0)
    cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", c.rope_scaling.factor},
                           {"low_freq_factor", c.rope_scaling.low_freq_factor},
                           {"high_freq_factor", c.rope_scaling.high_freq_factor},
                           {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
  return cfg;
}

void write_quantized_llama(const std::string& dir, const LlamaWeights& w, const TokenizerSpec& tokenizer,
                           const QuantizeReport& report, bool force) {
  namespace fs = std::filesystem;
  ZEROTH_CHECK(!w.config.rope_interleaved, "write_quantized_llama: q/k rows must be in rotate-half order");
  ZEROTH_CHECK(force || !fs::exists(dir), "--out {}: already exists; choose another directory or pass --force to "
               "overwrite its model files", dir);
  fs::create_directories(dir);
  TensorList tensors;
  tensors.push_back({"model.embed_tokens.weight", w.tok_embeddings});
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    tensors.push_back({pre + "input_layernorm.weight", L.attn_norm});
    tensors.push_back({pre + "post_attention_layernorm.weight", L.ffn_norm});
    for (int pi = 0; pi < kProjCount; ++pi) {
      const std::string m = pre + hf_projection_module(Proj(pi));
      tensors.push_back({m + ".weight", L.proj(Proj(pi))});
      if (!L.low_rank_a[size_t(pi)].defined()) continue;
      // bf16 holds the factors exactly: the decomposition rounded them so.
      auto bf16 = [](const Tensor& t) {
        Tensor o = Tensor::empty(DType::BF16, t.shape());
        const float* src = t.data<float>();
        auto* dst = o.data<uint16_t>();
        for (int64_t i = 0; i < t.numel(); ++i) dst[i] = f32_to_bf16(src[i]);
        return o;
      };
      tensors.push_back({m + ".low_rank_A", bf16(L.low_rank_a[size_t(pi)])});
      tensors.push_back({m + ".low_rank_B", bf16(L.low_rank_b[size_t(pi)])});
    }
  }
  tensors.push_back({"model.norm.weight", w.final_norm});
  if (!w.config.tie_embeddings) tensors.push_back({"lm_head.weight", w.output});
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                    {{"format", "pt"}, {"zeroth.quantize.method", report.options.method},
                     {"zeroth.quantize.rank", std::to_string(report.options.rank)}});
  std::ofstream(fs::path(dir) / "config.json") << hf_llama_config(w.config).dump(2) << "\n";
  write_tokenizer_spec((fs::path(dir) / "zeroth_tokenizer.json").string(), tokenizer);
  std::ofstream(fs::path(dir) / "quantize_report.json") << report.to_json().dump(1) << "\n";
}

}  // namespace zeroth
