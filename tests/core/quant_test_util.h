// Test data for the quantization and matmul tests.
#pragma once
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/quant/blocks.h"
#include "core/quant/quant.h"
#include "core/tensor.h"

namespace zeroth::test {

inline std::vector<float> normal_values(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Valid K-quant rows: random bytes with sane f16 super-block scales (d ~ 1e-3),
// as a quantizer of N(0, 0.02) weights would write.
inline void randomize_kquant_rows(DType t, uint8_t* data, size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  for (size_t i = 0; i < bytes; ++i) data[i] = uint8_t(rng());
  const int64_t bb = dtype_info(t).block_bytes;
  for (size_t off = 0; off + size_t(bb) <= bytes; off += size_t(bb)) {
    const uint16_t d = f32_to_f16(1e-3f * float(1 + rng() % 8));
    const uint16_t dmin = f32_to_f16(5e-4f * float(1 + rng() % 8));
    if (t == DType::Q6_K) {
      std::memcpy(data + off + offsetof(BlockQ6K, d), &d, 2);
    } else {
      std::memcpy(data + off, &d, 2);
      std::memcpy(data + off + 2, &dmin, 2);
    }
  }
}

// An (n, k) weight of dtype t: quantized from N(0, 1) values, or valid random
// blocks for the decode-only K-quants.
inline Tensor make_weight(DType t, int64_t n, int64_t k, uint32_t seed) {
  if (can_quantize_to(t)) {
    const auto v = normal_values(size_t(n * k), seed);
    return quantize(Tensor::from_vector(v, {n, k}), t);
  }
  Tensor w = Tensor::empty(t, {n, k});
  randomize_kquant_rows(t, static_cast<uint8_t*>(w.raw()), w.nbytes(), seed);
  return w;
}

}  // namespace zeroth::test
