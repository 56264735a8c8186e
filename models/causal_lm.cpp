#include "models/causal_lm.h"

#include <algorithm>

#include "core/error.h"
#include "core/matmul.h"
#include "core/ops.h"

namespace zeroth {
namespace {
// Rows of logits computed at once: bounds the (chunk, vocab) buffer to ~4 MiB.
int64_t logit_chunk(int64_t vocab) { return std::max<int64_t>(1, (int64_t(4) << 20) / (4 * vocab)); }
}  // namespace

std::vector<float> CausalLM::logits(const std::vector<float>& hidden, const std::vector<int64_t>& rows) const {
  const int64_t d = hidden_size(), V = vocab_size(), m = int64_t(rows.size());
  std::vector<float> sel(size_t(m * d)), out(size_t(m * V));
  for (int64_t i = 0; i < m; ++i) {
    const int64_t r = rows[size_t(i)];
    ZEROTH_CHECK(r >= 0 && (r + 1) * d <= int64_t(hidden.size()), "logits: row {} outside the hidden states", r);
    std::copy_n(hidden.data() + r * d, d, sel.data() + i * d);
  }
  matmul(sel.data(), m, d, output_matrix(), out.data(), V, threads_);
  return out;
}

std::vector<float> CausalLM::token_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                            const std::vector<int32_t>& targets) const {
  ZEROTH_CHECK(rows.size() == targets.size(), "token_logprobs: {} rows but {} targets", rows.size(), targets.size());
  const int64_t V = vocab_size();
  for (int32_t t : targets) ZEROTH_CHECK(t >= 0 && t < V, "target token {} outside the vocabulary of {}", t, V);
  std::vector<float> out(rows.size());
  const size_t chunk = size_t(logit_chunk(V));
  for (size_t r0 = 0; r0 < rows.size(); r0 += chunk) {
    const size_t r1 = std::min(rows.size(), r0 + chunk);
    const std::vector<int64_t> part(rows.begin() + int64_t(r0), rows.begin() + int64_t(r1));
    const std::vector<float> lg = logits(hidden, part);
    std::vector<float> lse(part.size());
    logsumexp_rows(lg.data(), int64_t(part.size()), V, lse.data(), threads_);
    for (size_t i = 0; i < part.size(); ++i) out[r0 + i] = lg[i * size_t(V) + size_t(targets[r0 + i])] - lse[i];
  }
  return out;
}

std::vector<float> CausalLM::column_logprobs(const std::vector<float>& hidden, const std::vector<int64_t>& rows,
                                             const std::vector<int32_t>& columns) const {
  const int64_t V = vocab_size();
  for (int32_t c : columns) ZEROTH_CHECK(c >= 0 && c < V, "column {} outside the vocabulary of {}", c, V);
  std::vector<float> out(rows.size() * columns.size());
  const size_t chunk = size_t(logit_chunk(V));
  for (size_t r0 = 0; r0 < rows.size(); r0 += chunk) {
    const size_t r1 = std::min(rows.size(), r0 + chunk);
    const std::vector<int64_t> part(rows.begin() + int64_t(r0), rows.begin() + int64_t(r1));
    const std::vector<float> lg = logits(hidden, part);
    std::vector<float> lse(part.size());
    logsumexp_rows(lg.data(), int64_t(part.size()), V, lse.data(), threads_);
    for (size_t i = 0; i < part.size(); ++i)
      for (size_t j = 0; j < columns.size(); ++j)
        out[(r0 + i) * columns.size() + j] = lg[i * size_t(V) + size_t(columns[j])] - lse[i];
  }
  return out;
}

}  // namespace zeroth
