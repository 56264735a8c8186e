// Language-modelling loss: mean negative log-likelihood of each next token.
// A thin wrapper over evaluate() (task.h) for callers holding token documents.
#pragma once
#include <cstdint>
#include <vector>

#include "models/causal_lm.h"

namespace zeroth {

struct NllResult {
  int64_t tokens = 0;      // predicted tokens (each document contributes length - 1)
  double total_nll = 0;    // nats
  double mean() const { return tokens ? total_nll / double(tokens) : 0.0; }
};

// Runs the documents (token ids, BOS included) through the model in batches of
// about `batch_tokens` rows. Documents longer than the context are cut.
NllResult evaluate_nll(const CausalLM& model, const std::vector<std::vector<int32_t>>& docs,
                       int64_t batch_tokens = 4096, const AdapterSet* adapters = nullptr);

}  // namespace zeroth
