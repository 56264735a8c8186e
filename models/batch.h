// A batch of token sequences packed row after row (no padding rows): sequence s
// owns rows [seqs[s].start, seqs[s].start + seqs[s].length) at positions 0.. .
#pragma once
#include <cstdint>
#include <vector>

#include "core/ops.h"

namespace zeroth {

struct TokenBatch {
  std::vector<int32_t> tokens;     // (rows)
  std::vector<int32_t> positions;  // (rows)
  std::vector<SeqSpan> seqs;       // (sequences)
  std::vector<int32_t> variant;    // (sequences) adapter variant; non-decreasing

  int64_t rows() const { return int64_t(tokens.size()); }
  // Appends a sequence (positions 0..len-1) that runs under adapter `variant`.
  void add(const std::vector<int32_t>& seq, int32_t variant_id = 0);
  // Contiguous row ranges [begin, end) of each variant, in order: {variant, begin, end}.
  struct VariantRows { int32_t variant; int64_t begin, end; };
  std::vector<VariantRows> variant_rows() const;
};

}  // namespace zeroth
