// NF4 (QLoRA NormalFloat4) with double-quantized block scales; row layout in
// core/quant/blocks.h.
//
// Encoding a row: (1) absmax per block of 64; (2) per group of up to 256 blocks,
// mean = average absmax, gscale = max |absmax - mean| / 127, and each absmax is
// stored as the 8-bit code round((absmax - mean) / gscale) + 128; (3) each element
// is coded against the *decoded* absmax' (what decoding will use) as the nearest
// codebook level to x / absmax', clamped to [-1, 1].
// Error per element ≤ max_half_gap * absmax' + |absmax - absmax'|, where the
// second term (the double-quantization error) is ≤ gscale / 2 + rounding.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/quant/blocks.h"

namespace zeroth {
namespace {

// Midpoints between consecutive codebook levels: the code of v in [-1, 1] is the
// number of midpoints below it (ties go up).
constexpr std::array<float, 15> nf4_midpoints() {
  std::array<float, 15> m{};
  for (size_t i = 0; i < 15; ++i) m[i] = (kNf4Codebook[i] + kNf4Codebook[i + 1]) * 0.5f;
  return m;
}
constexpr std::array<float, 15> kMid = nf4_midpoints();

uint8_t nf4_code(float v) {
  uint8_t c = 0;
  for (float m : kMid) c += uint8_t(v >= m);
  return c;
}

}  // namespace

float nf4_block_absmax(const uint8_t* row, int64_t k, int64_t b) {
  const int64_t g = b / kNf4Group;
  const uint8_t* gp = row + nf4_group_offset(k) + g * 8;
  const float gscale = load_f32(gp), mean = load_f32(gp + 4);
  const int code = row[nf4_qscale_offset(k) + b];
  return float(code - 128) * gscale + mean;
}

void encode_nf4(const float* in, int64_t k, uint8_t* row) {
  const int64_t blocks = k / kNf4Block;
  std::vector<float> absmax(size_t(blocks), 0.0f);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t j = 0; j < kNf4Block; ++j)
      absmax[size_t(b)] = std::max(absmax[size_t(b)], std::fabs(in[b * kNf4Block + j]));

  uint8_t* qscale = row + nf4_qscale_offset(k);
  for (int64_t g0 = 0; g0 < blocks; g0 += kNf4Group) {
    const int64_t g1 = std::min(blocks, g0 + kNf4Group);
    double sum = 0.0;
    for (int64_t b = g0; b < g1; ++b) sum += absmax[size_t(b)];
    const float mean = float(sum / double(g1 - g0));
    float dev = 0.0f;
    for (int64_t b = g0; b < g1; ++b) dev = std::max(dev, std::fabs(absmax[size_t(b)] - mean));
    const float gscale = dev / 127.0f;
    ZEROTH_CHECK(std::isfinite(gscale), "nf4: block scales overflow f32 (values near FLT_MAX)");
    uint8_t* gp = row + nf4_group_offset(k) + (g0 / kNf4Group) * 8;
    store_f32(gp, gscale);
    store_f32(gp + 4, mean);
    for (int64_t b = g0; b < g1; ++b) {
      const float q = gscale > 0.0f ? std::nearbyint((absmax[size_t(b)] - mean) / gscale) : 0.0f;
      qscale[b] = uint8_t(std::clamp(q, -127.0f, 127.0f) + 128.0f);
    }
  }

  uint8_t* codes = row;
  for (int64_t b = 0; b < blocks; ++b) {
    const float s = nf4_block_absmax(row, k, b);  // the scale decoding will see
    const float* x = in + b * kNf4Block;
    uint8_t c[kNf4Block];
    for (int64_t j = 0; j < kNf4Block; ++j) {
      // s <= 0 only when the true absmax is within the double-quantization
      // error of 0: code every element as exact 0 (level 7).
      c[j] = s > 0.0f ? nf4_code(std::clamp(x[j] / s, -1.0f, 1.0f)) : uint8_t(7);
    }
    for (int64_t j = 0; j < 32; ++j) codes[b * 32 + j] = uint8_t(c[j] | (c[j + 32] << 4));
  }
}

void decode_nf4(const uint8_t* row, int64_t k, int64_t k0, int64_t len, float* out) {
  for (int64_t b = k0 / kNf4Block; b < (k0 + len) / kNf4Block; ++b) {
    const float s = nf4_block_absmax(row, k, b);
    const uint8_t* c = row + b * 32;
    float* y = out + (b * kNf4Block - k0);
    for (int j = 0; j < 32; ++j) {
      y[j] = s * kNf4Codebook[c[j] & 0xF];
      y[j + 32] = s * kNf4Codebook[c[j] >> 4];
    }
  }
}

}  // namespace zeroth
