// zeroth's 4-bit formats, blocks of 32 with f32 constants (more exact than
// ggml's f16 ones at +2..4 bytes per block):
//   I4_B32  symmetric:  scale = absmax / 7,          x ≈ scale * (q - 8), q in [1, 15]
//   I4M_B32 with min:   scale = (max - min) / 15,    x ≈ scale * q + min, q in [0, 15]
// Both keep the error per element ≤ scale / 2 (plus f32 rounding). I4_B32 gives
// up code 0 (-8) so that +absmax and -absmax are both exact.
// Nibble order as Q4_0: byte j holds element j (low) and j + 16 (high).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/quant/blocks.h"

namespace zeroth {

void encode_i4(const float* in, int64_t k, uint8_t* out) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* x = in + b * 32;
    uint8_t* blk = out + b * sizeof(BlockI4);
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float scale = amax / 7.0f;
    store_f32(blk, scale);
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) {
      const float r = scale > 0.0f ? std::nearbyint(x[j] / scale) : 0.0f;
      q[j] = uint8_t(std::clamp(r, -7.0f, 7.0f) + 8.0f);
    }
    uint8_t* qs = blk + offsetof(BlockI4, qs);
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t(q[j] | (q[j + 16] << 4));
  }
}

void decode_i4(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockI4);
    const float scale = load_f32(blk);
    const uint8_t* qs = blk + offsetof(BlockI4, qs);
    float* y = out + b * 32;
    for (int j = 0; j < 16; ++j) {
      y[j] = scale * float(int(qs[j] & 0xF) - 8);
      y[j + 16] = scale * float(int(qs[j] >> 4) - 8);
    }
  }
}

void encode_i4m(const float* in, int64_t k, uint8_t* out) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* x = in + b * 32;
    uint8_t* blk = out + b * sizeof(BlockI4M);
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; ++j) { lo = std::min(lo, x[j]); hi = std::max(hi, x[j]); }
    const float scale = (hi - lo) / 15.0f;
    store_f32(blk + offsetof(BlockI4M, scale), scale);
    store_f32(blk + offsetof(BlockI4M, min), lo);
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) {
      const float r = scale > 0.0f ? std::nearbyint((x[j] - lo) / scale) : 0.0f;
      q[j] = uint8_t(std::clamp(r, 0.0f, 15.0f));
    }
    uint8_t* qs = blk + offsetof(BlockI4M, qs);
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t(q[j] | (q[j + 16] << 4));
  }
}

void decode_i4m(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockI4M);
    const float scale = load_f32(blk + offsetof(BlockI4M, scale));
    const float lo = load_f32(blk + offsetof(BlockI4M, min));
    const uint8_t* qs = blk + offsetof(BlockI4M, qs);
    float* y = out + b * 32;
    for (int j = 0; j < 16; ++j) {
      y[j] = scale * float(qs[j] & 0xF) + lo;
      y[j + 16] = scale * float(qs[j] >> 4) + lo;
    }
  }
}

}  // namespace zeroth
