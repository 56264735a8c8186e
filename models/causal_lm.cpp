#include "models/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>

#include "core/error.h"
#include "core/matmul.h"
#include "core/ops.h"

namespace zeroth {
namespace {
// Rows of logits computed at once: bounds the (chunk, vocab) buffer to ~4 MiB.
int64_t logit_chunk(int64_t vocab) { return std::max<int64_t>(1, (int64_t(4) << 20) / (4 * vocab)); }

// The distinct rows of a loss's terms in first-seen order, each with its terms.
struct DistinctRows {
  std::vector<int64_t> rows;
  std::vector<std::vector<size_t>> terms;
};
DistinctRows distinct_rows(const std::vector<int64_t>& rows) {
  DistinctRows out;
  std::map<int64_t, size_t> slot;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto [it, fresh] = slot.try_emplace(rows[i], out.rows.size());
    if (fresh) {
      out.rows.push_back(rows[i]);
      out.terms.emplace_back();
    }
    out.terms[it->second].push_back(i);
  }
  return out;
}

// The checks every loss-term reader makes: rows inside `hidden`, targets in the vocabulary.
void check_terms(const std::vector<float>& hidden, int64_t d, int64_t V, const std::vector<int64_t>& rows,
                 const std::vector<int32_t>& targets, const char* who) {
  ZEROTH_CHECK(rows.size() == targets.size(), "{}: {} rows but {} targets", who, rows.size(), targets.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ZEROTH_CHECK(rows[i] >= 0 && (rows[i] + 1) * d <= int64_t(hidden.size()), "{}: row {} outside the hidden states",
                 who, rows[i]);
    ZEROTH_CHECK(targets[i] >= 0 && targets[i] < V, "target token {} outside the vocabulary of {}", targets[i], V);
  }
}
}  // namespace

void CausalLM::logit_chunks(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                            const TokenBatch* batch, const AdapterSet* adapters, size_t chunk,
                            const std::function<void(const std::vector<size_t>&, const std::vector<float>&)>& fn) const {
  const int64_t d = hidden_size(), V = vocab_size();
  for (int64_t r : rows)
    ZEROTH_CHECK(r >= 0 && (r + 1) * d <= int64_t(hidden.size()), "logits: row {} outside the hidden states", r);
  // The positions of `rows` per output matrix: all on the base's (variant -1),
  // or grouped by variant when the adapters train the output layer.
  std::map<int32_t, std::vector<size_t>> groups;
  if (adapters && adapters->overrides_output()) {
    std::vector<int32_t> row_variant;
    if (batch) {
      row_variant.assign(size_t(batch->rows()), 0);
      for (const auto& vr : batch->variant_rows())
        std::fill(row_variant.begin() + vr.begin, row_variant.begin() + vr.end, vr.variant);
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      ZEROTH_CHECK(!batch || rows[i] < batch->rows(), "logits: row {} outside the batch of {} rows", rows[i],
                   batch ? batch->rows() : 0);
      groups[batch ? row_variant[size_t(rows[i])] : 0].push_back(i);
    }
  } else {
    auto& all = groups[-1];
    all.resize(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) all[i] = i;
  }
  std::vector<float> scratch;  // one variant's output matrix, when it is built
  for (const auto& [variant, positions] : groups) {
    const float* w = variant >= 0 ? adapters->output(variant, scratch) : nullptr;
    const Tensor wt = w ? Tensor::over(Storage::borrow(const_cast<float*>(w), size_t(V * d) * 4), 0, DType::F32,
                                       {V, d})
                        : output_matrix();
    for (size_t c0 = 0; c0 < positions.size(); c0 += chunk) {
      const size_t c1 = std::min(positions.size(), c0 + chunk);
      const std::vector<size_t> idx(positions.begin() + int64_t(c0), positions.begin() + int64_t(c1));
      const int64_t m = int64_t(idx.size());
      std::vector<float> sel(size_t(m * d)), lg(size_t(m * V));
      for (int64_t i = 0; i < m; ++i) std::copy_n(hidden.data() + rows[idx[size_t(i)]] * d, d, sel.data() + i * d);
      matmul(sel.data(), m, d, wt, lg.data(), V, threads_);
      fn(idx, lg);
    }
  }
}

std::vector<float> CausalLM::logits(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                    const TokenBatch* batch, const AdapterSet* adapters) const {
  const size_t V = size_t(vocab_size());
  std::vector<float> out(rows.size() * V);
  logit_chunks(hidden, rows, batch, adapters, std::numeric_limits<size_t>::max(),
               [&](const std::vector<size_t>& idx, const std::vector<float>& lg) {
                 for (size_t i = 0; i < idx.size(); ++i)
                   std::copy_n(lg.data() + i * V, V, out.data() + idx[i] * V);
               });
  return out;
}

std::vector<float> CausalLM::token_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                            const std::vector<int32_t>& targets, const TokenBatch* batch,
                                            const AdapterSet* adapters) const {
  ZEROTH_CHECK(rows.size() == targets.size(), "token_logprobs: {} rows but {} targets", rows.size(), targets.size());
  const int64_t V = vocab_size();
  for (int32_t t : targets) ZEROTH_CHECK(t >= 0 && t < V, "target token {} outside the vocabulary of {}", t, V);
  std::vector<float> out(rows.size());
  logit_chunks(hidden, rows, batch, adapters, size_t(logit_chunk(V)),
               [&](const std::vector<size_t>& idx, const std::vector<float>& lg) {
                 std::vector<float> lse(idx.size());
                 logsumexp_rows(lg.data(), int64_t(idx.size()), V, lse.data(), threads_);
                 for (size_t i = 0; i < idx.size(); ++i)
                   out[idx[i]] = lg[i * size_t(V) + size_t(targets[idx[i]])] - lse[i];
               });
  return out;
}

std::vector<float> CausalLM::column_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                             const std::vector<int32_t>& columns, const TokenBatch* batch,
                                             const AdapterSet* adapters) const {
  const int64_t V = vocab_size();
  for (int32_t c : columns) ZEROTH_CHECK(c >= 0 && c < V, "column {} outside the vocabulary of {}", c, V);
  std::vector<float> out(rows.size() * columns.size());
  logit_chunks(hidden, rows, batch, adapters, size_t(logit_chunk(V)),
               [&](const std::vector<size_t>& idx, const std::vector<float>& lg) {
                 std::vector<float> lse(idx.size());
                 logsumexp_rows(lg.data(), int64_t(idx.size()), V, lse.data(), threads_);
                 for (size_t i = 0; i < idx.size(); ++i)
                   for (size_t j = 0; j < columns.size(); ++j)
                     out[idx[i] * columns.size() + j] = lg[i * size_t(V) + size_t(columns[j])] - lse[i];
               });
  return out;
}

void AdapterGradients::clear() {
  for (auto* group : {&A, &B, &norms})
    for (auto& g : *group) std::fill(g.begin(), g.end(), 0.0f);
}

double CausalLM::backward(const TokenBatch&, const AdapterSet&, const HiddenLoss&, AdapterGradients&,
                          const BackwardOptions&) const {
  fail("the {} model family has no backward pass: the gradient path (role grad) needs a llama-family model",
       family());
}

std::vector<float> CausalLM::logprob_backward(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                              const std::vector<int32_t>& targets, const std::vector<double>& coefs,
                                              std::vector<float>& d_hidden) const {
  const int64_t d = hidden_size(), V = vocab_size();
  ZEROTH_CHECK(rows.size() == coefs.size(), "logprob_backward: {} rows, {} coefficients", rows.size(), coefs.size());
  ZEROTH_CHECK(d_hidden.size() == hidden.size(), "logprob_backward: d_hidden has {} floats, hidden {}",
               d_hidden.size(), hidden.size());
  check_terms(hidden, d, V, rows, targets, "logprob_backward");
  const auto [uniq, terms] = distinct_rows(rows);
  std::vector<float> lp(rows.size());
  const Tensor& w = output_matrix();
  const int64_t chunk = logit_chunk(V);
  for (size_t c0 = 0; c0 < uniq.size(); c0 += size_t(chunk)) {
    const size_t c1 = std::min(uniq.size(), c0 + size_t(chunk));
    const int64_t m = int64_t(c1 - c0);
    std::vector<float> sel(static_cast<size_t>(m * d)), lg(static_cast<size_t>(m * V));
    std::vector<float> lse(static_cast<size_t>(m)), dsel(static_cast<size_t>(m * d));
    for (int64_t i = 0; i < m; ++i) std::copy_n(hidden.data() + uniq[c0 + size_t(i)] * d, d, sel.data() + i * d);
    matmul(sel.data(), m, d, w, lg.data(), V, threads_);  // (m, V) logits
    logsumexp_rows(lg.data(), m, V, lse.data(), threads_);
    // d logit_v = Σ_terms c·([v = target] − softmax_v), formed in place of the logits.
    for (int64_t i = 0; i < m; ++i) {
      float* row = lg.data() + i * V;
      double csum = 0;
      for (size_t t : terms[c0 + size_t(i)]) {
        lp[t] = row[targets[t]] - lse[size_t(i)];
        csum += coefs[t];
      }
      for (int64_t v = 0; v < V; ++v) row[v] = float(-csum * std::exp(double(row[v]) - double(lse[size_t(i)])));
      for (size_t t : terms[c0 + size_t(i)]) row[targets[t]] += float(coefs[t]);
    }
    matmul_dx(lg.data(), m, V, w, dsel.data(), d, false, threads_);  // (m, d) = dlogits · W_out
    for (int64_t i = 0; i < m; ++i) {
      float* dst = d_hidden.data() + uniq[c0 + size_t(i)] * d;
      for (int64_t e = 0; e < d; ++e) dst[e] += dsel[size_t(i * d + e)];
    }
  }
  return lp;
}

double CausalLM::jvp(const TokenBatch&, const AdapterSet&, const AdapterSet&, int, const HiddenLossJvp&,
                     std::vector<double>&) const {
  fail("the {} model family has no forward-mode derivatives: the JVP path needs a llama-family model", family());
}

std::vector<float> CausalLM::logprob_jvp(const std::vector<float>& hidden, const std::vector<float>& hidden_dots,
                                         int64_t count, const std::vector<int64_t>& rows,
                                         const std::vector<int32_t>& targets, std::vector<double>& lp_dots) const {
  const int64_t d = hidden_size(), V = vocab_size();
  ZEROTH_CHECK(count >= 1 && hidden_dots.size() == size_t(count) * hidden.size(),
               "logprob_jvp: {} tangent floats for {} tangents of {} hidden floats", hidden_dots.size(), count,
               hidden.size());
  check_terms(hidden, d, V, rows, targets, "logprob_jvp");
  const int64_t n = int64_t(hidden.size()) / d, T = int64_t(rows.size());
  const auto [uniq, terms] = distinct_rows(rows);
  std::vector<float> lp(rows.size());
  lp_dots.assign(size_t(count * T), 0.0);
  const Tensor& w = output_matrix();
  // A chunk's m primal rows and its count·m tangent rows: (1 + count)·m logit
  // rows in one product, so each tile of the output matrix is decoded once
  // for all of them (the buffer is 1 + count times the forward's).
  const int64_t chunk = logit_chunk(V);
  for (size_t c0 = 0; c0 < uniq.size(); c0 += size_t(chunk)) {
    const size_t c1 = std::min(uniq.size(), c0 + size_t(chunk));
    const int64_t m = int64_t(c1 - c0), S = 1 + count;
    std::vector<float> sel(static_cast<size_t>(S * m * d)), lg(static_cast<size_t>(S * m * V));
    std::vector<float> lse(static_cast<size_t>(m));
    for (int64_t s = 0; s < S; ++s) {
      const float* src = s == 0 ? hidden.data() : hidden_dots.data() + (s - 1) * n * d;
      for (int64_t i = 0; i < m; ++i)
        std::copy_n(src + uniq[c0 + size_t(i)] * d, d, sel.data() + (s * m + i) * d);
    }
    matmul(sel.data(), S * m, d, w, lg.data(), V, threads_);  // (S·m, V): logits, then their tangents
    logsumexp_rows(lg.data(), m, V, lse.data(), threads_);
    // lṗ = logit_dot[target] − Σ_v softmax_v·logit_dot_v
    std::vector<double> prob(static_cast<size_t>(V));
    for (int64_t i = 0; i < m; ++i) {
      const float* row = lg.data() + i * V;
      for (size_t t : terms[c0 + size_t(i)]) lp[t] = row[targets[t]] - lse[size_t(i)];
      for (int64_t v = 0; v < V; ++v) prob[size_t(v)] = std::exp(double(row[v]) - double(lse[size_t(i)]));
      for (int64_t c = 0; c < count; ++c) {
        const float* tr = lg.data() + ((1 + c) * m + i) * V;
        double mean = 0;
        for (int64_t v = 0; v < V; ++v) mean += prob[size_t(v)] * double(tr[v]);
        for (size_t t : terms[c0 + size_t(i)]) lp_dots[size_t(c * T) + t] = double(tr[targets[t]]) - mean;
      }
    }
  }
  return lp;
}

}  // namespace zeroth
