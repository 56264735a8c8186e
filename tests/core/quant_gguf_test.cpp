// GGUF block decoders against hand-built blocks: bytes written out here,
// expected floats worked out from the format description (ggml's layout), and
// a few spot values computed by hand.
#include <cstdint>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/quant/blocks.h"
#include "core/quant/quant.h"

using namespace zeroth;

namespace {

std::vector<float> decode(DType t, const std::vector<uint8_t>& bytes, int64_t k) {
  EXPECT_EQ(bytes.size(), row_bytes(t, k));
  std::vector<float> y(size_t(k), -999.0f);
  dequantize_row(t, bytes.data(), y.data(), k);
  return y;
}

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) { b[at] = uint8_t(v & 0xFF); b[at + 1] = uint8_t(v >> 8); }

// (scale, min) of the 8 sub-blocks used by the K-quant tests, and their 12-byte packing:
// bytes 0-3: scale[j] | (scale[j+4] >> 4) << 6;  bytes 4-7: min[j] | (min[j+4] >> 4) << 6;
// bytes 8-11: (scale[j+4] & 15) | (min[j+4] & 15) << 4.
const int kSc[8] = {1, 2, 3, 4, 33, 47, 63, 17};
const int kMn[8] = {5, 6, 7, 8, 40, 20, 50, 0};
const uint8_t kScalesPacked[12] = {0x81, 0x82, 0xC3, 0x44, 0x85, 0x46, 0xC7, 0x08, 0x81, 0x4F, 0x2F, 0x01};

}  // namespace

TEST(GgufDecode, F16AndBF16) {
  std::vector<uint8_t> h(8);
  put16(h, 0, 0x3C00); put16(h, 2, 0xC000); put16(h, 4, 0x0001); put16(h, 6, 0x7BFF);
  EXPECT_EQ(decode(DType::F16, h, 4), (std::vector<float>{1.0f, -2.0f, 5.9604644775390625e-08f, 65504.0f}));
  std::vector<uint8_t> b(4);
  put16(b, 0, 0x3F80); put16(b, 2, 0xC0A0);
  EXPECT_EQ(decode(DType::BF16, b, 2), (std::vector<float>{1.0f, -5.0f}));
}

TEST(GgufDecode, Q8_0) {
  std::vector<uint8_t> b(34);
  put16(b, 0, 0x3800);  // d = 0.5
  for (int j = 0; j < 32; ++j) b[2 + j] = uint8_t(int8_t(8 * j - 128));
  const auto y = decode(DType::Q8_0, b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * float(8 * j - 128)) << j;
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[31], 60.0f);
}

TEST(GgufDecode, Q4_0) {
  std::vector<uint8_t> b(2 * 18);  // two blocks: the second has d = -1
  put16(b, 0, 0x4000);             // d = 2
  put16(b, 18, 0xBC00);            // d = -1
  for (int j = 0; j < 16; ++j) b[2 + j] = b[20 + j] = uint8_t(j | ((15 - j) << 4));
  const auto y = decode(DType::Q4_0, b, 64);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * float(j - 8));        // low nibbles: elements 0..15
    EXPECT_EQ(y[16 + j], 2.0f * float(7 - j));   // high nibbles: elements 16..31
    EXPECT_EQ(y[32 + j], -1.0f * float(j - 8));
  }
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[16], 14.0f);
  EXPECT_EQ(y[31], -16.0f);
}

TEST(GgufDecode, Q4_1) {
  std::vector<uint8_t> b(20);
  put16(b, 0, 0x3800);  // d = 0.5
  put16(b, 2, 0xBC00);  // m = -1
  for (int j = 0; j < 16; ++j) b[4 + j] = uint8_t(j | ((15 - j) << 4));
  const auto y = decode(DType::Q4_1, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * float(j) - 1.0f);
    EXPECT_EQ(y[16 + j], 0.5f * float(15 - j) - 1.0f);
  }
  EXPECT_EQ(y[16], 6.5f);
}

// Q5_0 (ggml's block_q5_0): f16 d, a little-endian u32 qh whose bit i is the
// fifth bit of element i, then Q4_0's nibbles; x = d * (q - 16).
TEST(GgufDecode, Q5_0) {
  std::vector<uint8_t> b(22);
  put16(b, 0, 0x3800);  // d = 0.5
  const uint32_t qh = 0xA5F0C3E1u;
  for (int i = 0; i < 4; ++i) b[2 + size_t(i)] = uint8_t(qh >> (8 * i));
  for (int j = 0; j < 16; ++j) b[6 + size_t(j)] = uint8_t(j | ((15 - j) << 4));
  const auto y = decode(DType::Q5_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    const int lo = j + 16 * int((qh >> j) & 1), hi = (15 - j) + 16 * int((qh >> (j + 16)) & 1);
    EXPECT_EQ(y[size_t(j)], 0.5f * float(lo - 16)) << j;
    EXPECT_EQ(y[size_t(16 + j)], 0.5f * float(hi - 16)) << j;
  }
  EXPECT_EQ(y[0], 0.5f * float(16 - 16));  // qh bit 0 = 1: q = 0 | 16
  EXPECT_EQ(y[1], 0.5f * float(1 - 16));   // bit 1 = 0
  // Every one of the 32 levels, both halves: encode picks them back.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = float(j - 16);  // -16..15 with d = 1
  std::vector<uint8_t> enc(22);
  quantize_row(DType::Q5_0, x.data(), enc.data(), 32);
  EXPECT_EQ(decode(DType::Q5_0, enc, 32), x);
}

TEST(GgufDecode, KScaleMinUnpacking) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, mn;
    k_scale_min(j, kScalesPacked, sc, mn);
    EXPECT_EQ(sc, kSc[j]) << j;
    EXPECT_EQ(mn, kMn[j]) << j;
  }
}

TEST(GgufDecode, Q4K) {
  std::vector<uint8_t> b(144);
  put16(b, 0, 0x3C00);  // d = 1
  put16(b, 2, 0x3800);  // dmin = 0.5
  std::memcpy(&b[4], kScalesPacked, 12);
  // chunk c (64 elements) uses qs[32c + l]: low nibble l & 15, high nibble (7l + c) & 15
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b[16 + 32 * c + l] = uint8_t((l & 15) | (((7 * l + c) & 15) << 4));
  const auto y = decode(DType::Q4_K, b, 256);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(y[64 * c + l], float(kSc[2 * c]) * float(l & 15) - 0.5f * float(kMn[2 * c]));
      EXPECT_EQ(y[64 * c + 32 + l], float(kSc[2 * c + 1]) * float((7 * l + c) & 15) - 0.5f * float(kMn[2 * c + 1]));
    }
  EXPECT_EQ(y[100], 48.0f);   // sub-block 3: 4 * 13 - 0.5 * 8
  EXPECT_EQ(y[130], 46.0f);   // sub-block 4: 33 * 2 - 0.5 * 40
  EXPECT_EQ(y[250], 153.0f);  // sub-block 7: 17 * 9 - 0
}

TEST(GgufDecode, Q5K) {
  std::vector<uint8_t> b(176);
  put16(b, 0, 0x3400);  // d = 0.25
  put16(b, 2, 0x3C00);  // dmin = 1
  std::memcpy(&b[4], kScalesPacked, 12);
  for (int l = 0; l < 32; ++l) b[16 + l] = uint8_t(37 * l + 5);  // qh
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b[48 + 32 * c + l] = uint8_t((l & 15) | (((7 * l + c) & 15) << 4));
  const auto y = decode(DType::Q5_K, b, 256);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int qh = uint8_t(37 * l + 5);
      const int q_lo = (l & 15) + 16 * ((qh >> (2 * c)) & 1);
      const int q_hi = ((7 * l + c) & 15) + 16 * ((qh >> (2 * c + 1)) & 1);
      EXPECT_EQ(y[64 * c + l], 0.25f * float(kSc[2 * c]) * float(q_lo) - float(kMn[2 * c]));
      EXPECT_EQ(y[64 * c + 32 + l], 0.25f * float(kSc[2 * c + 1]) * float(q_hi) - float(kMn[2 * c + 1]));
    }
  // element 1: qh[1] = 42 = 0b101010, bit 0 clear: q = 1; 0.25 * 1 * 1 - 5
  EXPECT_EQ(y[1], -4.75f);
  // element 33 (chunk 0, high half, l = 1): bit 1 of 42 set: q = 7 + 16 = 23; 0.25 * 2 * 23 - 6
  EXPECT_EQ(y[33], 5.5f);
}

TEST(GgufDecode, Q6K) {
  std::vector<uint8_t> b(210);
  for (int i = 0; i < 128; ++i) b[i] = uint8_t(5 * i);          // ql
  for (int i = 0; i < 64; ++i) b[128 + i] = uint8_t(11 * i + 3);  // qh
  const int8_t sc[16] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -128};
  std::memcpy(&b[192], sc, 16);
  put16(b, 208, 0x3800);  // d = 0.5
  const auto y = decode(DType::Q6_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, r = e % 128, i = r / 32, l = r % 32;
    const int ql = b[64 * h + l + 32 * (i & 1)];
    const int nib = i >= 2 ? ql >> 4 : ql & 15;
    const int hi2 = (b[128 + 32 * h + l] >> (2 * i)) & 3;
    const int q = (nib | (hi2 << 4)) - 32;
    EXPECT_EQ(y[e], 0.5f * float(sc[8 * h + l / 16 + 2 * i]) * float(q)) << e;
  }
  EXPECT_EQ(y[0], 8.0f);      // ql 0, qh 3 -> q = 48 - 32 = 16; 0.5 * 1 * 16
  EXPECT_EQ(y[200], 143.0f);  // half 1, i 2, l 8: nibble 6, bits 3 -> 54 - 32 = 22; 0.5 * 13 * 22
}

TEST(GgufDecode, RowsOfSeveralBlocksAndBadLength) {
  std::vector<uint8_t> b(3 * 34, 0);
  for (int blk = 0; blk < 3; ++blk) { put16(b, size_t(34 * blk), 0x3C00); b[34 * blk + 2] = uint8_t(blk + 1); }
  const auto y = decode(DType::Q8_0, b, 96);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[32], 2.0f);
  EXPECT_EQ(y[64], 3.0f);
  EXPECT_EQ(y[65], 0.0f);
  float out[40];
  EXPECT_THROW(dequantize_row(DType::Q8_0, b.data(), out, 40), Error);
  EXPECT_THROW(dequantize_row(DType::Q6_K, b.data(), out, 128), Error);
}
