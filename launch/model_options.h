// The options every model-running subcommand shares (--model, --tokenizer,
// --quantize, --threads) and loading what they name.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "models/llama.h"
#include "models/tokenizer.h"

namespace zeroth::cli {

struct ModelOptions {
  std::string model;
  std::string tokenizer;
  std::string quantize;          // "" = keep the file's dtypes
  bool quantize_embeddings = false;
  int threads = 0;
};

void add_model_options(CLI::App* sub, ModelOptions& opt);

struct LoadedModel {
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
  double load_seconds = 0;
};
// Loads weights and tokenizer; logs one line about each to stderr.
LoadedModel load_model(const ModelOptions& opt, bool need_tokenizer = true);

}  // namespace zeroth::cli
