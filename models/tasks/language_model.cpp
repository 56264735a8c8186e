#include "models/tasks/language_model.h"

#include <algorithm>

namespace zeroth {

NllResult evaluate_nll(const LlamaModel& model, const std::vector<std::vector<int32_t>>& docs, int64_t batch_tokens,
                       const AdapterSet* adapters) {
  NllResult r;
  const int64_t ctx = model.config().max_seq_len;
  size_t i = 0;
  while (i < docs.size()) {
    TokenBatch batch;
    std::vector<int64_t> rows;
    std::vector<int32_t> targets;
    // Fill one batch; a single long document always fits (it is cut at ctx).
    while (i < docs.size() && (batch.rows() == 0 || batch.rows() + std::min<int64_t>(ctx, int64_t(docs[i].size())) <=
                                                        batch_tokens)) {
      const auto& d = docs[i++];
      if (d.size() < 2) continue;
      const std::vector<int32_t> seq(d.begin(), d.begin() + std::min<int64_t>(ctx, int64_t(d.size())));
      const int64_t start = batch.rows();
      batch.add(seq);
      for (size_t t = 0; t + 1 < seq.size(); ++t) {
        rows.push_back(start + int64_t(t));
        targets.push_back(seq[t + 1]);
      }
    }
    if (rows.empty()) continue;
    const auto hidden = model.forward_hidden(batch, adapters);
    for (float lp : model.token_logprobs(hidden, rows, targets)) r.total_nll -= double(lp);
    r.tokens += int64_t(rows.size());
  }
  return r;
}

}  // namespace zeroth
