// task_gradient: the sequences BatchScorer would run for one variant, one
// forward with a tape, the loss's gradient at the hidden states through the
// output layer (CausalLM::logprob_backward), and backward into the adapters.
#include "models/tasks/task_gradient.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace zeroth {

HiddenLoss mean_nll_loss(const CausalLM& model, const std::vector<int64_t>& rows,
                         const std::vector<int32_t>& targets, const char* who) {
  return [&model, &rows, &targets, who](const std::vector<float>& hidden, std::vector<float>& d_hidden) -> double {
    ZEROTH_CHECK(!rows.empty(), "{} predict no tokens", who);
    const double N = double(rows.size());
    const std::vector<double> coefs(rows.size(), -1.0 / N);
    const std::vector<float> lp = model.logprob_backward(hidden, rows, targets, coefs, d_hidden);
    double sum = 0;
    for (float v : lp) sum -= double(v);
    return sum / N;
  };
}

LossTerms loss_terms(const CausalLM& model, const Task& task, const std::vector<const Example*>& examples,
                     const char* who) {
  ZEROTH_CHECK(!examples.empty(), "{}: no examples", who);
  const bool cls = task.is_classification();
  const auto& words = task.label_words();
  const bool single = cls && std::all_of(words.begin(), words.end(), [](const auto& w) { return w.size() == 1; });
  const size_t n_words = words.size();
  LossTerms out;
  auto append = [&](const std::vector<int32_t>& seq) {
    if (int64_t(seq.size()) > model.max_seq_len())
      fail("an example of {} tokens exceeds the model's context of {}: lower task.max_length", seq.size(),
           model.max_seq_len());
    const int64_t start = out.batch.rows();
    out.batch.add(seq, 0);
    return start;
  };
  auto term = [&](int64_t row, int32_t target, size_t owner) {
    out.rows.push_back(row);
    out.targets.push_back(target);
    out.owner.push_back(owner);
  };
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = *examples[i];
    if (!cls) {
      const int64_t start = append(e.tokens);
      for (int64_t t = e.loss_begin; t + 1 < int64_t(e.tokens.size()); ++t) term(start + t, e.tokens[size_t(t + 1)], i);
    } else {
      ZEROTH_CHECK(e.label >= 0 && size_t(e.label) < n_words, "{}: label {} outside the {} label words", who, e.label,
                   n_words);
      if (single) {
        const int64_t last = append(e.tokens) + int64_t(e.tokens.size()) - 1;
        for (size_t w = 0; w < n_words; ++w) term(last, words[w][0], i * n_words + w);
      } else {
        for (size_t w = 0; w < n_words; ++w) {
          std::vector<int32_t> seq = e.tokens;
          seq.insert(seq.end(), words[w].begin(), words[w].end());
          const int64_t start = append(seq);
          for (size_t j = 0; j < words[w].size(); ++j)
            term(start + int64_t(e.tokens.size() + j) - 1, words[w][j], i * n_words + w);
        }
      }
    }
  }
  return out;
}

double loss_from_logprobs(const Task& task, const std::vector<const Example*>& examples, const LossTerms& terms,
                          const std::vector<float>& lp, std::vector<double>& coefs) {
  ZEROTH_CHECK(lp.size() == terms.rows.size(), "loss: {} log-probabilities for {} terms", lp.size(),
               terms.rows.size());
  ZEROTH_CHECK(!lp.empty(), "loss: the examples predict no tokens");
  if (!task.is_classification()) {
    const double N = double(lp.size());
    coefs.assign(lp.size(), -1.0 / N);
    double sum = 0;
    for (float v : lp) sum -= double(v);
    return sum / N;
  }
  const size_t E = examples.size(), n_words = task.label_words().size();
  std::vector<double> ll(E * n_words, 0.0);
  for (size_t t = 0; t < lp.size(); ++t) ll[terms.owner[t]] += double(lp[t]);
  std::vector<double> a(E * n_words);  // ∂L/∂ll
  double total = 0;
  for (size_t i = 0; i < E; ++i) {
    const double* li = ll.data() + i * n_words;
    const double m = *std::max_element(li, li + n_words);
    double s = 0;
    for (size_t w = 0; w < n_words; ++w) s += std::exp(li[w] - m);
    const size_t label = size_t(examples[i]->label);
    total += m + std::log(s) - li[label];
    for (size_t w = 0; w < n_words; ++w)
      a[i * n_words + w] = (std::exp(li[w] - m) / s - (w == label ? 1.0 : 0.0)) / double(E);
  }
  coefs.resize(lp.size());
  for (size_t t = 0; t < lp.size(); ++t) coefs[t] = a[terms.owner[t]];
  return total / double(E);
}

TaskGradient task_gradient(const CausalLM& model, const Task& task, const std::vector<const Example*>& examples,
                           const AdapterSet& adapters, const BackwardOptions& opt) {
  const LossTerms terms = loss_terms(model, task, examples, "task_gradient");
  TaskGradient out;
  out.tokens = terms.batch.rows();
  const HiddenLoss loss = [&](const std::vector<float>& hidden, std::vector<float>& d_hidden) -> double {
    if (!task.is_classification())
      return mean_nll_loss(model, terms.rows, terms.targets, "task_gradient: the examples")(hidden, d_hidden);
    // Classification: the coefficients depend on every word's log-likelihood,
    // so the (few) label rows run through the output layer twice.
    const std::vector<float> lp = model.token_logprobs(hidden, terms.rows, terms.targets);
    std::vector<double> coefs;
    const double value = loss_from_logprobs(task, examples, terms, lp, coefs);
    model.logprob_backward(hidden, terms.rows, terms.targets, coefs, d_hidden);
    return value;
  };
  out.loss = model.backward(terms.batch, adapters, loss, out.grads, opt);
  return out;
}

}  // namespace zeroth
