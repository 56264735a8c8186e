#include "models/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "core/error.h"
#include "core/matmul.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace zeroth {
namespace {
// Rows of logits computed at once where whole rows are needed (the gradient
// and JVP paths): bounds the (chunk, vocab) buffer to `mib` MiB.
int64_t logit_chunk(int64_t vocab, int64_t mib) { return std::max<int64_t>(1, (mib << 20) / (4 * vocab)); }
// The JVP's buffer holds 1 + count times the chunk, and its low memory is its
// point: 4 MiB (21 rows of SmolLM2's head). The backward's peak is its tape
// (240 MiB checkpointed on SmolLM2 at 16 × 64 tokens): 16 MiB there gives
// SmolLM2's head 80-row products instead of 21-row ones (rounded down to a
// multiple of 16, the x-packed GEMM path's tile, so no rows are padding).
constexpr int64_t kJvpLogitMiB = 4, kBackwardLogitMiB = 16;

// The log-prob paths walk the logits in blocks of up to kLogitRows rows by
// logit_block_cols(vocab) columns (at most 3 MiB). Many rows per block keep
// the output matrix's decode small beside its product (with row chunks of
// 4 MiB / vocab, SmolLM2's 49,152-word head ran 21 rows at a time); the column
// width depends on the vocabulary alone, so a row's arithmetic does not
// depend on the batch.
constexpr int64_t kLogitRows = 384;
int64_t logit_block_cols(int64_t vocab) { return std::min<int64_t>(vocab, 2048); }

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

void CausalLM::logit_blocks(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                            const TokenBatch* batch, const AdapterSet* adapters, int64_t max_rows, int64_t cols,
                            const LogitBlockFn& fn) const {
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
  std::vector<float> sel, lg;
  for (const auto& [variant, positions] : groups) {
    const float* w = variant >= 0 ? adapters->output(variant, scratch) : nullptr;
    const Tensor wt = w ? Tensor::over(Storage::borrow(const_cast<float*>(w), size_t(V * d) * 4), 0, DType::F32,
                                       {V, d})
                        : output_matrix();
    for (size_t c0 = 0; c0 < positions.size(); c0 += size_t(max_rows)) {
      const size_t c1 = std::min(positions.size(), c0 + size_t(max_rows));
      const std::vector<size_t> idx(positions.begin() + int64_t(c0), positions.begin() + int64_t(c1));
      const int64_t m = int64_t(idx.size());
      sel.resize(size_t(m * d));
      for (int64_t i = 0; i < m; ++i) std::copy_n(hidden.data() + rows[idx[size_t(i)]] * d, d, sel.data() + i * d);
      for (int64_t v0 = 0; v0 < V; v0 += cols) {
        const int64_t v1 = std::min(V, v0 + cols);
        lg.resize(size_t(m * (v1 - v0)));
        matmul(sel.data(), m, d, wt.slice(0, v0, v1), lg.data(), v1 - v0, threads_);
        fn(idx, v0, v1, lg);
      }
    }
  }
}

std::vector<float> CausalLM::logits(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                    const TokenBatch* batch, const AdapterSet* adapters) const {
  const int64_t V = vocab_size();
  std::vector<float> out(rows.size() * size_t(V));
  logit_blocks(hidden, rows, batch, adapters, kLogitRows, V,
               [&](const std::vector<size_t>& idx, int64_t, int64_t, const std::vector<float>& lg) {
                 for (size_t i = 0; i < idx.size(); ++i)
                   std::copy_n(lg.data() + i * size_t(V), V, out.data() + idx[i] * size_t(V));
               });
  return out;
}

// log p(columns | row) for every row: the logits are walked in blocks of the
// vocabulary with a running log-sum-exp per row, so neither the (rows, vocab)
// logits nor short row chunks (whose weight decode would dominate) are needed.
// The block width depends on the vocabulary alone and a row's arithmetic on
// nothing but that row, so a row scores the same alone or in any batch.
std::vector<float> CausalLM::logprob_columns(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                             const std::vector<int32_t>& columns, bool per_row,
                                             const TokenBatch* batch, const AdapterSet* adapters) const {
  const int64_t V = vocab_size();
  const size_t width = per_row ? 1 : columns.size();  // columns per row of `out`
  std::vector<float> out(rows.size() * width);
  std::vector<float> run_max(rows.size(), -INFINITY);
  std::vector<double> run_sum(rows.size(), 0.0);
  logit_blocks(hidden, rows, batch, adapters, kLogitRows, logit_block_cols(V),
               [&](const std::vector<size_t>& idx, int64_t v0, int64_t v1, const std::vector<float>& lg) {
                 const int64_t n = v1 - v0;
                 parallel_for(int64_t(idx.size()), 1, threads_, [&](int64_t i0, int64_t i1) {
                   for (int64_t i = i0; i < i1; ++i) {
                     const size_t r = idx[size_t(i)];
                     const float* x = lg.data() + i * n;
                     logsumexp_add(x, n, run_max[r], run_sum[r]);
                     for (size_t j = 0; j < width; ++j) {
                       const int64_t col = per_row ? columns[r] : columns[j];
                       if (col >= v0 && col < v1) out[r * width + j] = x[col - v0];
                     }
                   }
                 });
               });
  for (size_t r = 0; r < rows.size(); ++r) {
    const float lse = run_max[r] + float(std::log(run_sum[r]));
    for (size_t j = 0; j < width; ++j) out[r * width + j] -= lse;
  }
  return out;
}

std::vector<float> CausalLM::token_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                            const std::vector<int32_t>& targets, const TokenBatch* batch,
                                            const AdapterSet* adapters) const {
  ZEROTH_CHECK(rows.size() == targets.size(), "token_logprobs: {} rows but {} targets", rows.size(), targets.size());
  const int64_t V = vocab_size();
  for (int32_t t : targets) ZEROTH_CHECK(t >= 0 && t < V, "target token {} outside the vocabulary of {}", t, V);
  return logprob_columns(hidden, rows, targets, true, batch, adapters);
}

std::vector<float> CausalLM::column_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                             const std::vector<int32_t>& columns, const TokenBatch* batch,
                                             const AdapterSet* adapters) const {
  const int64_t V = vocab_size();
  for (int32_t c : columns) ZEROTH_CHECK(c >= 0 && c < V, "column {} outside the vocabulary of {}", c, V);
  return logprob_columns(hidden, rows, columns, false, batch, adapters);
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
  int64_t chunk = logit_chunk(V, kBackwardLogitMiB);
  if (chunk >= 16) chunk -= chunk % 16;
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
  const int64_t chunk = logit_chunk(V, kJvpLogitMiB);
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
