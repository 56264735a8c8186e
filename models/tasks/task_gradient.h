// The gradient of a task's loss through the frozen base into the adapters: the
// backward counterpart of BatchScorer, over the same sequences and the same
// loss (so a gradient member's ⟨∇L, z⟩ is the limit of a ZO member's
// (L(θ+εz) − L(θ−εz)) / 2ε on the same samples):
//   lm/completion    L = −(1/N) Σ log p(next token) over the N predicted tokens
//   classification   L = (1/E) Σ_examples −log softmax_w(ll_w)[label], ll_w the
//                    summed log-likelihood of label word w after the prompt
#pragma once
#include <cstdint>
#include <vector>

#include "models/tasks/task.h"

namespace zeroth {

struct TaskGradient {
  double loss = 0;          // L at the adapters' θ
  int64_t tokens = 0;       // rows run through the model
  AdapterGradients grads;   // ∂L/∂(LoRA factors, norms when trained)
};

// ∇L over `examples` (one batch, adapter variant 0). Fails, naming
// task.max_length, when a sequence exceeds the model's context.
TaskGradient task_gradient(const CausalLM& model, const Task& task, const std::vector<const Example*>& examples,
                           const AdapterSet& adapters, const BackwardOptions& opt = {});

// The sequences and log-probability terms of a task's loss over `examples`,
// as BatchScorer builds them: the batch (adapter variant 0) and, per term, the
// hidden row that predicts it, its target token and its owner (lm: the
// example; classification: example·n_words + word). Fails, naming
// task.max_length, when a sequence exceeds the model's context.
struct LossTerms {
  TokenBatch batch;
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  std::vector<size_t> owner;
};
LossTerms loss_terms(const CausalLM& model, const Task& task, const std::vector<const Example*>& examples,
                     const char* who);

// L from the terms' log-probabilities `lp` (the loss above), and ∂L/∂lp per
// term into `coefs`: −1/N for lm, softmax(ll) − onehot(label) over E for
// classification.
double loss_from_logprobs(const Task& task, const std::vector<const Example*>& examples, const LossTerms& terms,
                          const std::vector<float>& lp, std::vector<double>& coefs);

// The token-weighted mean NLL of `targets` predicted at hidden rows `rows`,
// as CausalLM::backward's loss: dL/d log p = −1/N for every term, known up
// front, so the output layer runs once. `rows` and `targets` must outlive it.
// Throws (naming `who`) when there is no target.
HiddenLoss mean_nll_loss(const CausalLM& model, const std::vector<int64_t>& rows,
                         const std::vector<int32_t>& targets, const char* who);

}  // namespace zeroth
