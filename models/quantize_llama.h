// `zeroth quantize`: a LLaMA model's projection matrices quantized once, into a
// model directory the loaders read (config.json, model.safetensors with block
// tensors, zeroth_tokenizer.json, quantize_report.json).
//
// Methods:
//   nf4, int4, int8  every projection in one format (nf4, i4_b32, i8_b64)
//   lq-lora          LQ-LoRA (Guo et al.): W ≈ Q + L1·L2 per projection, Q in
//                    the NF family (core/quant/nfk.h) with each matrix's
//                    configuration chosen by the exact budget allocator
//                    (core/quant/budget.h) under an average of budget_bits per
//                    parameter of Q, L1·L2 by the alternating decomposition
//                    (core/quant/lq_decompose.h). rank 0: the allocation alone
//                    (mixed-precision NF without a low-rank part).
// Allocation scores each configuration by the error after `score_iters`
// iterations of the decomposition (1: Q = quantize(W − SVD_r(W)), one SVD per
// matrix shared by every configuration); the chosen one then runs to the
// stopping rule.
//
// Fisher weighting (--fisher, lq-lora only): with FisherStats from calibration
// text (models/fisher.h), every matrix's decomposition minimizes
// ‖diag(ρ)^½ (W − Q − L1·L2) diag(γ)^½‖² with ρ, γ its factored Fisher
// (fisher_weights), and the allocator scores configurations by that weighted
// error; the report gives both the weighted and the plain error per matrix.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "models/llama.h"
#include "models/tokenizer.h"

namespace zeroth {

struct QuantizeOptions {
  std::string method = "lq-lora";  // nf4 | int4 | int8 | lq-lora
  int64_t rank = 64;
  double budget_bits = 2.75;       // average bits per parameter of Q (lq-lora)
  int max_iters = 10;
  int score_iters = 1;
  int power_iters = 2;
  uint64_t seed = 0;
  int threads = 0;
  bool verbose = false;            // one line per matrix on stderr
  void validate() const;           // errors name the flag to fix
};

struct MatrixReport {
  int layer = 0;
  Proj proj = Proj::Q;
  int64_t rows = 0, cols = 0;
  std::string format;   // chosen dtype, or the kept one
  bool kept = false;    // no candidate format fits its rows: left as loaded
  int64_t rank = 0;
  double error = 0;     // ‖W − Q − L1·L2‖²_F (unweighted, with or without Fisher)
  double rel_error = 0; // error / ‖W‖²_F
  double fisher_error = 0, fisher_rel_error = 0;  // with Fisher: the weighted error, / weighted ‖W‖²
  int64_t q_bits = 0, low_rank_bits = 0;  // storage (L1, L2 in bf16)
  std::vector<double> iteration_errors;  // in the decomposition's norm (weighted with Fisher)
};

struct QuantizeReport {
  QuantizeOptions options;
  std::vector<MatrixReport> matrices;
  int64_t quantized_params = 0, q_bits = 0, low_rank_bits = 0, budget_bits = 0, allocator_unit = 0;
  int64_t kept_params = 0;
  double score_seconds = 0, allocate_seconds = 0, decompose_seconds = 0;
  int64_t fisher_batches = 0, fisher_tokens = 0;  // calibration (0: no Fisher weighting); set by the caller
  double fisher_mean_nll = 0, fisher_seconds = 0;
  double q_bits_per_param() const { return quantized_params ? double(q_bits) / double(quantized_params) : 0; }
  double total_bits_per_param() const {
    return quantized_params ? double(q_bits + low_rank_bits) / double(quantized_params) : 0;
  }
  nlohmann::json to_json() const;
  std::string table() const;  // per matrix: format, rank, relative error, bits, iterations
};

// Replaces w's projections by their quantized form (and frozen low-rank parts),
// in HF (rotate-half) q/k row order.
struct FisherStats;
QuantizeReport quantize_llama(LlamaWeights& w, const QuantizeOptions& opt, const FisherStats* fisher = nullptr);

// Writes the directory (which must not exist unless `force`).
void write_quantized_llama(const std::string& dir, const LlamaWeights& w, const TokenizerSpec& tokenizer,
                           const QuantizeReport& report, bool force);

// config.json in Hugging Face's LlamaForCausalLM layout.
nlohmann::json hf_llama_config(const LlamaConfig& c);

}  // namespace zeroth
