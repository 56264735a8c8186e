// ggml's legacy 32-element blocks Q8_0, Q4_0, Q4_1, Q5_0: decoders bit-exact to ggml's
// layout, and zeroth's own encoders for them (any valid block decodes the same).
//
// The encoders compute codes against the f16-rounded constants they store, so the
// decoded value is the nearest level that the stored block can express.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/half.h"
#include "core/quant/blocks.h"

namespace zeroth {
namespace {

// f16 field for a block constant; a constant that does not fit f16 means the
// weights are far outside what these formats are meant for.
uint16_t f16_constant(float v, const char* format) {
  const uint16_t h = f32_to_f16(v);
  ZEROTH_CHECK(std::isfinite(f16_to_f32(h)),
               "{}: block constant {} overflows f16 (|weights| too large for this format; use i8_b32 or f32)",
               format, v);
  return h;
}

// The legacy symmetric formats (Q4_0, Q5_0): levels d * (q - half), q in
// [0, 2·half). The element of largest magnitude v maps to -half exactly
// (d = v / -half), as ggml does; d goes into the block's first two bytes and
// the 32 codes into q.
void symmetric_codes(const float* x, int half, const char* format, uint8_t* blk, uint8_t* q) {
  float v = 0.0f;
  for (int j = 0; j < kQK; ++j)
    if (std::fabs(x[j]) > std::fabs(v)) v = x[j];
  const uint16_t dh = f16_constant(v / -float(half), format);
  const float d = f16_to_f32(dh);
  store_u16(blk, dh);
  for (int j = 0; j < kQK; ++j) {
    const float r = d != 0.0f ? std::nearbyint(x[j] / d) : 0.0f;
    q[j] = uint8_t(std::clamp(r, -float(half), float(half - 1)) + float(half));
  }
}

void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t(q[j] | (q[j + 16] << 4));
}

}  // namespace

void encode_q8_0(const float* in, int64_t k, uint8_t* out) {
  for (int64_t b = 0; b < k / kQK; ++b) {
    const float* x = in + b * kQK;
    uint8_t* blk = out + b * sizeof(BlockQ8_0);
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const uint16_t dh = f16_constant(amax / 127.0f, "q8_0");
    const float d = f16_to_f32(dh);
    store_u16(blk, dh);
    int8_t* qs = reinterpret_cast<int8_t*>(blk + offsetof(BlockQ8_0, qs));
    for (int j = 0; j < kQK; ++j) {
      const float q = d > 0.0f ? std::nearbyint(x[j] / d) : 0.0f;
      qs[j] = int8_t(std::clamp(q, -127.0f, 127.0f));
    }
  }
}

void decode_q8_0(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockQ8_0);
    const float d = f16_to_f32(load_u16(blk));
    const int8_t* qs = reinterpret_cast<const int8_t*>(blk + offsetof(BlockQ8_0, qs));
    for (int j = 0; j < kQK; ++j) out[b * kQK + j] = d * float(qs[j]);
  }
}

// Q4_0 levels are d * (q - 8), q in [0, 15] (symmetric_codes): an element of
// the opposite sign near -v clamps to +7 (error ≤ |d| there, ≤ |d|/2 elsewhere).
void encode_q4_0(const float* in, int64_t k, uint8_t* out) {
  for (int64_t b = 0; b < k / kQK; ++b) {
    uint8_t* blk = out + b * sizeof(BlockQ4_0);
    uint8_t q[32];
    symmetric_codes(in + b * kQK, 8, "q4_0", blk, q);
    pack_nibbles(q, blk + offsetof(BlockQ4_0, qs));
  }
}

void decode_q4_0(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockQ4_0);
    const float d = f16_to_f32(load_u16(blk));
    const uint8_t* qs = blk + offsetof(BlockQ4_0, qs);
    float* y = out + b * kQK;
    for (int j = 0; j < 16; ++j) {
      y[j] = d * float(int(qs[j] & 0xF) - 8);
      y[j + 16] = d * float(int(qs[j] >> 4) - 8);
    }
  }
}

// Q4_1 levels are d * q + m, q in [0, 15], with m = min and d = (max - min) / 15.
void encode_q4_1(const float* in, int64_t k, uint8_t* out) {
  for (int64_t b = 0; b < k / kQK; ++b) {
    const float* x = in + b * kQK;
    uint8_t* blk = out + b * sizeof(BlockQ4_1);
    float lo = x[0], hi = x[0];
    for (int j = 1; j < kQK; ++j) { lo = std::min(lo, x[j]); hi = std::max(hi, x[j]); }
    const uint16_t dh = f16_constant((hi - lo) / 15.0f, "q4_1");
    const uint16_t mh = f16_constant(lo, "q4_1");
    const float d = f16_to_f32(dh), m = f16_to_f32(mh);
    store_u16(blk + offsetof(BlockQ4_1, d), dh);
    store_u16(blk + offsetof(BlockQ4_1, m), mh);
    uint8_t q[32];
    for (int j = 0; j < kQK; ++j) {
      const float r = d > 0.0f ? std::nearbyint((x[j] - m) / d) : 0.0f;
      q[j] = uint8_t(std::clamp(r, 0.0f, 15.0f));
    }
    pack_nibbles(q, blk + offsetof(BlockQ4_1, qs));
  }
}

void decode_q4_1(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockQ4_1);
    const float d = f16_to_f32(load_u16(blk + offsetof(BlockQ4_1, d)));
    const float m = f16_to_f32(load_u16(blk + offsetof(BlockQ4_1, m)));
    const uint8_t* qs = blk + offsetof(BlockQ4_1, qs);
    float* y = out + b * kQK;
    for (int j = 0; j < 16; ++j) {
      y[j] = d * float(qs[j] & 0xF) + m;
      y[j + 16] = d * float(qs[j] >> 4) + m;
    }
  }
}

// Q5_0 levels are d * (q - 16), q in [0, 31] (symmetric_codes); the fifth bits
// go to qh.
void encode_q5_0(const float* in, int64_t k, uint8_t* out) {
  for (int64_t b = 0; b < k / kQK; ++b) {
    uint8_t* blk = out + b * sizeof(BlockQ5_0);
    uint8_t q[32];
    symmetric_codes(in + b * kQK, 16, "q5_0", blk, q);
    uint32_t qh = 0;
    for (int j = 0; j < kQK; ++j) {
      qh |= uint32_t(q[j] >> 4) << j;
      q[j] &= 0xF;
    }
    for (int i = 0; i < 4; ++i) blk[offsetof(BlockQ5_0, qh) + size_t(i)] = uint8_t(qh >> (8 * i));
    pack_nibbles(q, blk + offsetof(BlockQ5_0, qs));
  }
}

void decode_q5_0(const uint8_t* blocks, int64_t nblocks, float* out) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * sizeof(BlockQ5_0);
    const float d = f16_to_f32(load_u16(blk));
    const uint8_t* h = blk + offsetof(BlockQ5_0, qh);
    const uint32_t qh = uint32_t(h[0]) | uint32_t(h[1]) << 8 | uint32_t(h[2]) << 16 | uint32_t(h[3]) << 24;
    const uint8_t* qs = blk + offsetof(BlockQ5_0, qs);
    float* y = out + b * kQK;
    for (int j = 0; j < 16; ++j) {
      const int lo = int(qs[j] & 0xF) | int((qh >> j) & 1) << 4;
      const int hi = int(qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
      y[j] = d * float(lo - 16);
      y[j + 16] = d * float(hi - 16);
    }
  }
}

}  // namespace zeroth
