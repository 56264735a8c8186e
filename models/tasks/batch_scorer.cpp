// BatchScorer and evaluate(): every (example, variant) pair in one TokenBatch,
// one forward_hidden, then the loss rows read out of the shared hidden states.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "models/tasks/task.h"

namespace zeroth {
namespace {

bool single_token_words(const Task& task) {
  const auto& w = task.label_words();
  return std::all_of(w.begin(), w.end(), [](const auto& x) { return x.size() == 1; });
}

// -log softmax(ll)[label]: cross-entropy over the label words' log-likelihoods.
double label_cross_entropy(const std::vector<double>& ll, int32_t label) {
  const double m = *std::max_element(ll.begin(), ll.end());
  double s = 0;
  for (double x : ll) s += std::exp(x - m);
  return m + std::log(s) - ll[size_t(label)];
}

}  // namespace

BatchScorer::BatchScorer(const Task& task) : task_(task) {}

int64_t BatchScorer::rows_of(const Example& e) const {
  const int64_t n = int64_t(e.tokens.size());
  if (!task_.is_classification() || single_token_words(task_)) return n;
  int64_t rows = 0;
  for (const auto& w : task_.label_words()) rows += n + int64_t(w.size());
  return rows;
}

void BatchScorer::add(const Example& e, int32_t variant) {
  ZEROTH_CHECK(variant >= 0, "BatchScorer: variant {} is negative", variant);
  ZEROTH_CHECK(items_.empty() || items_.back().variant <= variant,
               "BatchScorer: variant {} added after variant {} (variants must not decrease)", variant,
               items_.back().variant);
  if (task_.is_classification())
    ZEROTH_CHECK(e.label >= 0 && e.label < int32_t(task_.label_words().size()),
                 "BatchScorer: label {} outside the {} label words", e.label, task_.label_words().size());
  items_.push_back({&e, variant});
  rows_ += rows_of(e);
}

bool BatchScorer::empty() const { return items_.empty(); }

void BatchScorer::clear() {
  items_.clear();
  rows_ = 0;
}

BatchScorer::Result BatchScorer::run(const CausalLM& model, const AdapterSet* adapters) const {
  Result res;
  if (items_.empty()) return res;
  const bool cls = task_.is_classification();
  const bool single = cls && single_token_words(task_);
  const auto& words = task_.label_words();
  const size_t n_words = words.size();

  // Build the batch and the rows whose log-probabilities make the loss.
  TokenBatch batch;
  std::vector<int64_t> rows;      // token_logprobs rows (lm/completion, multi-token words)
  std::vector<int32_t> targets;
  std::vector<size_t> row_owner;  // lm: item; multi-token: item * n_words + word
  std::vector<int64_t> last_rows; // single-token words: the prompt's last row per item
  auto append = [&](const std::vector<int32_t>& seq, int32_t variant) {
    if (int64_t(seq.size()) > model.max_seq_len())
      fail("an example of {} tokens exceeds the model's context of {}: lower task.max_length", seq.size(),
           model.max_seq_len());
    const int64_t start = batch.rows();
    batch.add(seq, variant);
    return start;
  };
  for (size_t i = 0; i < items_.size(); ++i) {
    const Example& e = *items_[i].e;
    const int32_t v = items_[i].variant;
    if (!cls) {
      const int64_t start = append(e.tokens, v);
      for (int64_t t = e.loss_begin; t + 1 < int64_t(e.tokens.size()); ++t) {
        rows.push_back(start + t);
        targets.push_back(e.tokens[size_t(t + 1)]);
        row_owner.push_back(i);
      }
    } else if (single) {
      last_rows.push_back(append(e.tokens, v) + int64_t(e.tokens.size()) - 1);
    } else {
      // One sequence per candidate: prompt + word; the word's tokens are
      // predicted from rows len(prompt)-1 .. len(prompt)+len(word)-2.
      for (size_t w = 0; w < n_words; ++w) {
        std::vector<int32_t> seq = e.tokens;
        seq.insert(seq.end(), words[w].begin(), words[w].end());
        const int64_t start = append(seq, v);
        for (size_t j = 0; j < words[w].size(); ++j) {
          rows.push_back(start + int64_t(e.tokens.size() + j) - 1);
          targets.push_back(words[w][j]);
          row_owner.push_back(i * n_words + w);
        }
      }
    }
  }
  res.tokens = batch.rows();
  const std::vector<float> hidden = model.forward_hidden(batch, adapters);  // (rows, hidden_size)

  const size_t n = items_.size();
  res.example_loss.assign(n, 0.0);
  res.example_tokens.assign(n, cls ? 1 : 0);
  if (!cls) {
    const std::vector<float> lp = model.token_logprobs(hidden, rows, targets, &batch, adapters);
    for (size_t k = 0; k < lp.size(); ++k) {
      res.example_loss[row_owner[k]] -= double(lp[k]);
      ++res.example_tokens[row_owner[k]];
    }
  } else {
    // ll[i * n_words + w]: summed log-likelihood of word w after example i's prompt.
    std::vector<double> ll(n * n_words, 0.0);
    if (single) {
      std::vector<int32_t> columns;
      for (const auto& w : words) columns.push_back(w[0]);
      // (n, n_words); the adapters' output layer per variant when they train it.
      const std::vector<float> lp = model.column_logprobs(hidden, last_rows, columns, &batch, adapters);
      for (size_t k = 0; k < lp.size(); ++k) ll[k] = double(lp[k]);
    } else {
      const std::vector<float> lp = model.token_logprobs(hidden, rows, targets, &batch, adapters);
      for (size_t k = 0; k < lp.size(); ++k) ll[row_owner[k]] += double(lp[k]);
    }
    res.predicted.resize(n);
    res.correct.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const std::vector<double> li(ll.begin() + int64_t(i * n_words), ll.begin() + int64_t((i + 1) * n_words));
      const int32_t label = items_[i].e->label;
      res.example_loss[i] = label_cross_entropy(li, label);
      // The prediction normalizes by word length so long words are not penalized.
      int32_t best = 0;
      for (size_t w = 1; w < n_words; ++w)
        if (li[w] / double(words[w].size()) > li[size_t(best)] / double(words[size_t(best)].size()))
          best = int32_t(w);
      res.predicted[i] = best;
      res.correct[i] = best == label ? 1 : 0;
    }
  }

  // Per variant: token-weighted (lm/completion) or per-example (classification) mean.
  const int32_t max_variant = items_.back().variant;
  std::vector<double> sum(size_t(max_variant) + 1, 0.0);
  std::vector<int64_t> count(size_t(max_variant) + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    const size_t v = size_t(items_[i].variant);
    sum[v] += res.example_loss[i];  // classification: example_tokens = 1
    count[v] += res.example_tokens[i];
  }
  res.loss.assign(sum.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t v = 0; v < sum.size(); ++v)
    if (count[v] > 0) res.loss[v] = sum[v] / double(count[v]);
  // lm/completion examples report their own mean NLL per token.
  if (!cls)
    for (size_t i = 0; i < n; ++i)
      if (res.example_tokens[i] > 0) res.example_loss[i] /= double(res.example_tokens[i]);
  return res;
}

EvalResult evaluate(const CausalLM& model, const Task& task, Split split, int64_t batch_tokens,
                    const AdapterSet* adapters) {
  EvalResult out;
  const auto& examples = task.examples(split);
  double total = 0;
  int64_t correct = 0;
  BatchScorer scorer(task);
  auto flush = [&] {
    if (scorer.empty()) return;
    const auto r = scorer.run(model, adapters);
    for (size_t i = 0; i < r.example_loss.size(); ++i) {
      total += r.example_loss[i] * double(r.example_tokens[i]);  // back to sums
      out.tokens += r.example_tokens[i];
    }
    for (int32_t c : r.correct) correct += c;
    out.rows += r.tokens;
    out.examples += int64_t(scorer.size());
    scorer.clear();
  };
  for (const Example& e : examples) {
    if (!scorer.empty() && scorer.rows() + scorer.rows_of(e) > batch_tokens) flush();
    scorer.add(e, 0);
  }
  flush();
  out.loss = out.tokens > 0 ? total / double(out.tokens) : 0.0;
  if (task.is_classification()) out.accuracy = out.examples > 0 ? double(correct) / double(out.examples) : 0.0;
  return out;
}

}  // namespace zeroth
