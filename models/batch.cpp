#include "models/batch.h"

#include <cstdint>

#include "core/error.h"

namespace zeroth {

void TokenBatch::add(const std::vector<int32_t>& seq, int32_t variant_id) {
  ZEROTH_CHECK(!seq.empty(), "TokenBatch::add: empty sequence");
  ZEROTH_CHECK(variant.empty() || variant.back() <= variant_id,
               "TokenBatch: sequences must be added in non-decreasing variant order ({} after {})", variant_id,
               variant.back());
  seqs.push_back({rows(), int64_t(seq.size())});
  variant.push_back(variant_id);
  for (size_t i = 0; i < seq.size(); ++i) {
    tokens.push_back(seq[i]);
    positions.push_back(int32_t(i));
  }
}

std::vector<TokenBatch::VariantRows> TokenBatch::variant_rows() const {
  std::vector<VariantRows> out;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t b = seqs[s].start, e = b + seqs[s].length;
    if (!out.empty() && out.back().variant == variant[s] && out.back().end == b) out.back().end = e;
    else out.push_back({variant[s], b, e});
  }
  return out;
}

}  // namespace zeroth
