#include "models/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "core/error.h"

namespace zeroth {

Sampler::Sampler(const SamplerConfig& cfg) : cfg_(cfg), rng_(cfg.seed) {
  ZEROTH_CHECK(cfg.temperature >= 0, "temperature must be >= 0, got {}", cfg.temperature);
  ZEROTH_CHECK(cfg.top_p > 0 && cfg.top_p <= 1, "top_p must be in (0, 1], got {}", cfg.top_p);
}

int32_t Sampler::next(const std::vector<float>& logits) {
  ZEROTH_CHECK(!logits.empty(), "sampler: empty logits");
  if (cfg_.temperature == 0.0f)  // greedy: the first maximum, as llama2.c's argmax
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(double(logits[i] - mx) / cfg_.temperature);
  std::vector<int32_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  size_t keep = p.size();
  if (cfg_.top_p < 1.0f) {
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[size_t(a)] > p[size_t(b)]; });
    double acc = 0;
    for (keep = 0; keep < order.size();) {
      acc += p[size_t(order[keep++])] / sum;
      if (acc >= cfg_.top_p) break;
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[size_t(order[i])];
  double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (size_t i = 0; i < keep; ++i) {
    u -= p[size_t(order[i])];
    if (u <= 0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace zeroth
