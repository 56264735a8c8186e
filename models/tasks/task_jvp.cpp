// task_jvp: the sequences and loss terms task_gradient uses (loss_terms), one
// forward-mode pass, then the loss's tangent from the terms' log-probabilities
// and their tangents: dL = Σ_t (∂L/∂lp_t)·lṗ_t, with ∂L/∂lp_t the coefficients
// the backward feeds the output layer (loss_from_logprobs).
#include "models/tasks/task_jvp.h"

#include <cstdint>

#include "core/error.h"
#include "models/tasks/task_gradient.h"

namespace zeroth {

TaskJvp task_jvp(const CausalLM& model, const Task& task, const std::vector<const Example*>& examples,
                 const AdapterSet& adapters, const AdapterSet& directions, int count) {
  const LossTerms terms = loss_terms(model, task, examples, "task_jvp");
  TaskJvp out;
  out.tokens = terms.batch.rows();
  const HiddenLossJvp loss = [&](const std::vector<float>& hidden, const std::vector<float>& hidden_dots,
                                 int64_t directions_count, std::vector<double>& dots) -> double {
    std::vector<double> lp_dots, coefs;
    const std::vector<float> lp =
        model.logprob_jvp(hidden, hidden_dots, directions_count, terms.rows, terms.targets, lp_dots);
    const double value = loss_from_logprobs(task, examples, terms, lp, coefs);
    const size_t T = lp.size();
    for (int64_t c = 0; c < directions_count; ++c) {
      double s = 0;
      for (size_t t = 0; t < T; ++t) s += coefs[t] * lp_dots[size_t(c) * T + t];
      dots[size_t(c)] = s;
    }
    return value;
  };
  out.loss = model.jvp(terms.batch, adapters, directions, count, loss, out.derivatives);
  return out;
}

}  // namespace zeroth
