// How far a model's next-token distributions are from a reference's at the
// same positions: the quality measure of a quantized base against its f32 self.
#pragma once
#include <cstdint>
#include <vector>

namespace zeroth {

struct LogitAgreement {
  int64_t positions = 0;
  double top1 = 0;     // fraction of positions whose argmax token is the reference's
  double mean_kl = 0;  // mean KL(reference || test) in nats, over the full vocabulary
  double max_kl = 0;
};

// `reference` and `test` are (positions, vocab) row-major logits.
LogitAgreement compare_logits(const std::vector<float>& reference, const std::vector<float>& test, int64_t vocab);

}  // namespace zeroth
