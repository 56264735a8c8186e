// Choosing the next token from logits: greedy (temperature 0), or temperature
// with nucleus (top-p) truncation, from a seeded generator so runs repeat.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace zeroth {

struct SamplerConfig {
  float temperature = 1.0f;  // 0 = greedy
  float top_p = 1.0f;        // keep the smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerConfig& cfg);
  int32_t next(const std::vector<float>& logits);

 private:
  SamplerConfig cfg_;
  std::mt19937_64 rng_;
};

}  // namespace zeroth
