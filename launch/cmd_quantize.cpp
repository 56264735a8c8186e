// `zeroth quantize`: a model's projections quantized once (plain nf4/int4/int8,
// or LQ-LoRA: Q + L1·L2 under a bit budget) into a model directory that
// `zeroth eval/generate/train --model DIR` load. See models/quantize_llama.h.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <fmt/format.h>

#include "core/error.h"
#include "launch/commands.h"
#include "models/fisher.h"
#include "models/loaders/llama_loader.h"
#include "models/loaders/tokenizer_loader.h"
#include "models/quantize_llama.h"
#include "models/tasks/text_data.h"

namespace zeroth::cli {

Runner add_quantize(CLI::App& app) {
  struct Options {
    std::string model, out, tokenizer, calib;
    QuantizeOptions q;
    std::string separator = "<|endoftext|>";
    int64_t calib_docs = 0, calib_batch_docs = 1;
    bool fisher = false, force = false, json = false;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("quantize", "Quantize a model's projections once (nf4, int4, int8, or LQ-LoRA: "
                                             "W = Q + L1 L2 with per-matrix NF formats under a bit budget) into a "
                                             "model directory");
  sub->add_option("model", opt->model, "Model: GGUF file, HF directory, or llama2.c .bin")->required();
  sub->add_option("-o,--out", opt->out, "Output model directory (must not exist unless --force)")->required();
  sub->add_option("--method", opt->q.method, "nf4 | int4 | int8 | lq-lora")->capture_default_str();
  auto* rank = sub->add_option("--rank", opt->q.rank, "LQ-LoRA rank of L1 L2 (0: the budgeted NF allocation alone)")
                   ->capture_default_str();
  auto* budget = sub->add_option("--budget-bits", opt->q.budget_bits,
                                 "LQ-LoRA: average bits per parameter of Q (the low-rank parts come on top, 16 bits "
                                 "per factor element)")
                     ->capture_default_str();
  sub->add_option("--calib", opt->calib,
                  "Calibration text for --fisher: documents split on --separator, or JSONL with a text field");
  sub->add_flag("--fisher", opt->fisher,
                "LQ-LoRA: weight the decomposition's and the allocator's errors by the row/column-factored diagonal "
                "Fisher of the LM loss on --calib");
  sub->add_option("--separator", opt->separator, "Document separator of a plain-text --calib file");
  sub->add_option("--calib-docs", opt->calib_docs, "Use only the first N documents of --calib (0 = all)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--calib-batch-docs", opt->calib_batch_docs,
                  "Documents per calibration batch (each batch's gradient is one sample of the Fisher)")
      ->capture_default_str();
  sub->add_option("--tokenizer", opt->tokenizer, "Tokenizer file, when the model carries none");
  sub->add_option("--max-iters", opt->q.max_iters, "LQ-LoRA: most alternating iterations per matrix")
      ->capture_default_str();
  sub->add_option("--score-iters", opt->q.score_iters,
                  "LQ-LoRA: iterations behind each candidate format's error for the allocator")
      ->capture_default_str();
  sub->add_option("--power-iters", opt->q.power_iters, "Randomized SVD power iterations")->capture_default_str();
  sub->add_option("--seed", opt->q.seed, "Seed of the randomized SVD sketch")->capture_default_str();
  sub->add_option("-t,--threads", opt->q.threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
  sub->add_flag("--force", opt->force, "Overwrite the model files of an existing --out directory");
  sub->add_flag("-v,--verbose", opt->q.verbose, "One line per matrix as it finishes");
  sub->add_flag("--json", opt->json, "Print the report as JSON instead of a table");
  return [opt, rank, budget] {
    auto& q = opt->q;
    ZEROTH_CHECK(!opt->fisher || !opt->calib.empty(),
                 "--fisher needs --calib DATA: the Fisher weights come from gradients of the LM loss on that text");
    ZEROTH_CHECK(opt->fisher || opt->calib.empty(), "--calib {} is only read with --fisher; add --fisher or drop --calib",
                 opt->calib);
    ZEROTH_CHECK(!opt->fisher || q.method == "lq-lora", "--fisher applies to --method lq-lora only (got --method {})",
                 q.method);
    ZEROTH_CHECK(opt->calib_batch_docs >= 1, "--calib-batch-docs {}: must be at least 1", opt->calib_batch_docs);
    q.validate();
    ZEROTH_CHECK(q.method == "lq-lora" || (rank->count() == 0 && budget->count() == 0),
                 "--rank and --budget-bits apply to --method lq-lora only (got --method {})", q.method);
    ZEROTH_CHECK(opt->force || !std::filesystem::exists(opt->out),
                 "--out {}: already exists; choose another directory or pass --force", opt->out);
    LoadOptions lo;
    lo.threads = q.threads;
    LlamaWeights w = load_llama_weights(opt->model, lo);
    const TokenizerSpec tok = tokenizer_spec_for(opt->model, opt->tokenizer, w.config.vocab_size);
    fmt::print(stderr, "model: {}\n", w.config.describe());
    std::optional<FisherStats> fisher;
    double calib_seconds = 0;
    if (opt->fisher) {
      const auto t0 = std::chrono::steady_clock::now();
      TextDataOptions to;
      to.separator = opt->separator;
      const TextData data = read_text_documents(opt->calib, to);
      ZEROTH_CHECK(!data.documents.empty(), "--calib {}: no documents found", opt->calib);
      const auto tokenizer = make_tokenizer(tok);
      std::vector<std::vector<int32_t>> docs;
      for (const auto& d : data.documents) {
        if (opt->calib_docs > 0 && int64_t(docs.size()) >= opt->calib_docs) break;
        docs.push_back(tokenizer->encode(d, tokenizer->bos_id() >= 0, false));
      }
      // The model as loaded (before any of its matrices are replaced) runs the calibration.
      const LlamaModel model(w, q.threads);
      FisherOptions fo;
      fo.batch_docs = opt->calib_batch_docs;
      fisher = accumulate_fisher(model, docs, fo);
      calib_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print(stderr, "fisher: {} documents in {} batches, {} predicted tokens, mean NLL {:.4f}, {:.1f} s\n",
                 docs.size(), fisher->batches, fisher->tokens, fisher->mean_loss, calib_seconds);
    }
    QuantizeReport rep = quantize_llama(w, q, fisher ? &*fisher : nullptr);
    rep.fisher_seconds = calib_seconds;
    write_quantized_llama(opt->out, w, tok, rep, opt->force);
    if (opt->json) fmt::print("{}\n", rep.to_json().dump());
    else fmt::print("{}", rep.table());
    fmt::print(stderr, "wrote {} (config.json, model.safetensors, zeroth_tokenizer.json, quantize_report.json)\n",
               opt->out);
    return 0;
  };
}

}  // namespace zeroth::cli
