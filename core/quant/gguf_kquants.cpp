// ggml's K-quant super-blocks (256 elements) Q4_K, Q5_K, Q6_K: decode only.
// The float operations follow ggml's order ((d * sc) * q - dmin * mn), so the
// decoded values equal ggml's bit for bit.
#include <cstddef>
#include <cstdint>

#include "core/half.h"
#include "core/quant/blocks.h"

namespace zeroth {

void decode_q4_k(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockQ4K);
    const float d = f16_to_f32(load_u16(blk + offsetof(BlockQ4K, d)));
    const float dmin = f16_to_f32(load_u16(blk + offsetof(BlockQ4K, dmin)));
    const uint8_t* scales = blk + offsetof(BlockQ4K, scales);
    const uint8_t* qs = blk + offsetof(BlockQ4K, qs);
    float* y = out + b * kQKK;
    for (int c = 0; c < 4; ++c) {  // 64-element chunks: sub-blocks 2c (low nibbles), 2c+1 (high)
      uint8_t sc, mn;
      k_scale_min(2 * c, scales, sc, mn);
      const float d1 = d * float(sc), m1 = dmin * float(mn);
      k_scale_min(2 * c + 1, scales, sc, mn);
      const float d2 = d * float(sc), m2 = dmin * float(mn);
      const uint8_t* q = qs + 32 * c;
      for (int l = 0; l < 32; ++l) y[64 * c + l] = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) y[64 * c + 32 + l] = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void decode_q5_k(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockQ5K);
    const float d = f16_to_f32(load_u16(blk + offsetof(BlockQ5K, d)));
    const float dmin = f16_to_f32(load_u16(blk + offsetof(BlockQ5K, dmin)));
    const uint8_t* scales = blk + offsetof(BlockQ5K, scales);
    const uint8_t* qh = blk + offsetof(BlockQ5K, qh);
    const uint8_t* qs = blk + offsetof(BlockQ5K, qs);
    float* y = out + b * kQKK;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc, mn;
      k_scale_min(2 * c, scales, sc, mn);
      const float d1 = d * float(sc), m1 = dmin * float(mn);
      k_scale_min(2 * c + 1, scales, sc, mn);
      const float d2 = d * float(sc), m2 = dmin * float(mn);
      const uint8_t* q = qs + 32 * c;
      const int lo_bit = 2 * c, hi_bit = 2 * c + 1;
      for (int l = 0; l < 32; ++l)
        y[64 * c + l] = d1 * float((q[l] & 0xF) | (((qh[l] >> lo_bit) & 1) << 4)) - m1;
      for (int l = 0; l < 32; ++l)
        y[64 * c + 32 + l] = d2 * float((q[l] >> 4) | (((qh[l] >> hi_bit) & 1) << 4)) - m2;
    }
  }
}

void decode_q6_k(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockQ6K);
    const float d = f16_to_f32(load_u16(blk + offsetof(BlockQ6K, d)));
    for (int h = 0; h < 2; ++h) {  // two halves of 128 elements
      const uint8_t* ql = blk + offsetof(BlockQ6K, ql) + 64 * h;
      const uint8_t* qh = blk + offsetof(BlockQ6K, qh) + 32 * h;
      const int8_t* sc = reinterpret_cast<const int8_t*>(blk + offsetof(BlockQ6K, scales)) + 8 * h;
      float* y = out + b * kQKK + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

}  // namespace zeroth
