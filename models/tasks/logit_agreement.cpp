#include "models/tasks/logit_agreement.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace zeroth {

namespace {

// log-softmax in double: KL between close distributions is a difference of
// nearly equal numbers, and f32 rounding alone would show up as ~1e-7 nats.
void log_softmax(const float* x, int64_t n, std::vector<double>& out) {
  out.resize(size_t(n));
  const double mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = double(x[i]) - lse;
}

}  // namespace

LogitAgreement compare_logits(const std::vector<float>& reference, const std::vector<float>& test, int64_t vocab) {
  ZEROTH_CHECK(vocab > 0 && reference.size() == test.size() && reference.size() % size_t(vocab) == 0,
               "compare_logits: {} and {} logits do not form rows of {}", reference.size(), test.size(), vocab);
  LogitAgreement r;
  r.positions = int64_t(reference.size()) / vocab;
  std::vector<double> lp, lq;
  int64_t agree = 0;
  double kl_sum = 0;
  for (int64_t p = 0; p < r.positions; ++p) {
    const float* a = reference.data() + p * vocab;
    const float* b = test.data() + p * vocab;
    agree += (std::max_element(a, a + vocab) - a) == (std::max_element(b, b + vocab) - b);
    log_softmax(a, vocab, lp);
    log_softmax(b, vocab, lq);
    double kl = 0;
    for (int64_t v = 0; v < vocab; ++v) kl += std::exp(lp[size_t(v)]) * (lp[size_t(v)] - lq[size_t(v)]);
    kl = std::max(kl, 0.0);  // tiny negative values are rounding
    kl_sum += kl;
    r.max_kl = std::max(r.max_kl, kl);
  }
  if (r.positions > 0) {
    r.top1 = double(agree) / double(r.positions);
    r.mean_kl = kl_sum / double(r.positions);
  }
  return r;
}

}  // namespace zeroth
