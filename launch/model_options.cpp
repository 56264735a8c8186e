#include "launch/model_options.h"

#include <chrono>
#include <fmt/format.h>

#include "core/error.h"
#include "models/loaders/llama_loader.h"
#include "models/loaders/tokenizer_loader.h"

namespace zeroth::cli {

void add_model_options(CLI::App* sub, ModelOptions& opt) {
  sub->add_option("-m,--model", opt.model, "Model: GGUF file, HF directory, or llama2.c .bin")->required();
  sub->add_option("--tokenizer", opt.tokenizer,
                  "Tokenizer file (llama2.c tokenizer.bin or tokenizer.json); default: the model's own");
  sub->add_option("--quantize", opt.quantize,
                  "Quantize full-precision projection weights on load: i8_b32, i8_b64, i8_b128, i4_b32, i4m_b32, "
                  "nf4, q8_0, q4_0, q4_1, f16, bf16");
  sub->add_flag("--quantize-embeddings", opt.quantize_embeddings,
                "Quantize the token embeddings (and a tied output layer) too");
  sub->add_option("-t,--threads", opt.threads, "Threads (default: OMP_NUM_THREADS or all cores)")
      ->check(CLI::NonNegativeNumber);
}

LoadedModel load_model(const ModelOptions& opt, bool need_tokenizer) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadOptions lo;
  lo.threads = opt.threads;
  lo.quantize_embeddings = opt.quantize_embeddings;
  if (!opt.quantize.empty()) {
    const auto d = parse_dtype(opt.quantize);
    ZEROTH_CHECK(d.has_value(), "--quantize {}: unknown dtype (try nf4, i8_b64, i4_b32, q8_0, q4_0)", opt.quantize);
    lo.quantize = *d;
  }
  LoadedModel out;
  out.model = std::make_unique<LlamaModel>(load_llama_weights(opt.model, lo), opt.threads);
  const auto& w = out.model->weights();
  if (need_tokenizer) out.tokenizer = load_tokenizer(opt.model, opt.tokenizer, w.config.vocab_size);
  out.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr, "model: {} ({:.1f}M parameters, {:.1f} MiB of weights, loaded in {:.2f} s)\n",
             w.config.describe(), double(w.parameter_count()) / 1e6, double(w.weight_bytes()) / (1 << 20),
             out.load_seconds);
  for (const auto& note : w.notes) fmt::print(stderr, "note: {}\n", note);
  if (out.tokenizer) fmt::print(stderr, "tokenizer: {}\n", out.tokenizer->describe());
  return out;
}

}  // namespace zeroth::cli
