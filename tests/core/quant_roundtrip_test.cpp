// Encoders of zeroth's formats and the GGUF legacy blocks: error bounds per
// element, NF4's codebook and double quantization, zero rows, bad inputs.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/quant/blocks.h"
#include "core/quant/quant.h"
#include "tests/core/quant_test_util.h"

using namespace zeroth;
using zeroth::test::normal_values;

namespace {

std::vector<uint8_t> encode(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> row(row_bytes(t, int64_t(x.size())));
  quantize_row(t, x.data(), row.data(), int64_t(x.size()));
  return row;
}
std::vector<float> decode(DType t, const std::vector<uint8_t>& row, int64_t k) {
  std::vector<float> y(static_cast<size_t>(k));
  dequantize_row(t, row.data(), y.data(), k);
  return y;
}

// Checks |x - decode(encode(x))| ≤ bound(block index, block values) per element.
template <typename Bound>
void check_blocks(DType t, const std::vector<float>& x, int64_t block, Bound bound) {
  const auto row = encode(t, x);
  const auto y = decode(t, row, int64_t(x.size()));
  for (size_t b = 0; b < x.size() / size_t(block); ++b) {
    const float* xb = &x[b * size_t(block)];
    float lo = xb[0], hi = xb[0], amax = 0.0f;
    for (int64_t j = 0; j < block; ++j) {
      lo = std::min(lo, xb[j]); hi = std::max(hi, xb[j]); amax = std::max(amax, std::fabs(xb[j]));
    }
    const float tol = bound(row.data(), b, lo, hi, amax);
    for (int64_t j = 0; j < block; ++j) {
      const size_t i = b * size_t(block) + size_t(j);
      ASSERT_LE(std::fabs(x[i] - y[i]), tol) << dtype_name(t) << " element " << i;
    }
  }
}

constexpr float kRel = 1e-6f;  // room for the f32 rounding of scale * q (+ min)

}  // namespace

TEST(QuantRoundTrip, Int8AbsmaxWithinHalfScale) {
  const auto x = normal_values(1024, 1);
  check_blocks(DType::I8_B32, x, 32, [](const uint8_t*, size_t, float, float, float a) { return a / 127 / 2 + a * kRel; });
  check_blocks(DType::I8_B64, x, 64, [](const uint8_t*, size_t, float, float, float a) { return a / 127 / 2 + a * kRel; });
  check_blocks(DType::I8_B128, x, 128, [](const uint8_t*, size_t, float, float, float a) { return a / 127 / 2 + a * kRel; });
  // the stored scale is absmax / 127 and the largest element is exact
  const auto row = encode(DType::I8_B32, x);
  float a = 0.0f;
  for (int j = 0; j < 32; ++j) a = std::max(a, std::fabs(x[size_t(j)]));
  EXPECT_EQ(load_f32(row.data()), a / 127.0f);
}

TEST(QuantRoundTrip, Int4WithinHalfScale) {
  const auto x = normal_values(1024, 2);
  check_blocks(DType::I4_B32, x, 32, [](const uint8_t*, size_t, float, float, float a) { return a / 7 / 2 + a * kRel; });
  check_blocks(DType::I4M_B32, x, 32, [](const uint8_t*, size_t, float lo, float hi, float a) {
    return (hi - lo) / 15 / 2 + a * kRel;
  });
}

TEST(QuantRoundTrip, GgufLegacyEncoders) {
  const auto x = normal_values(1024, 3, 0.05f);
  // Q8_0: ≤ d/2 with the stored f16 d (codes are chosen against it)
  check_blocks(DType::Q8_0, x, 32, [](const uint8_t* r, size_t b, float, float, float a) {
    return f16_to_f32(load_u16(r + 34 * b)) / 2 + a * kRel;
  });
  // Q4_0: ≤ |d|/2, except the opposite extreme that clamps to +7: ≤ |d|
  check_blocks(DType::Q4_0, x, 32, [](const uint8_t* r, size_t b, float, float, float a) {
    return std::fabs(f16_to_f32(load_u16(r + 18 * b))) + a * kRel;
  });
  // Q4_1: ≤ d/2 plus the f16 rounding of the min (≤ 2^-11 |min|)
  check_blocks(DType::Q4_1, x, 32, [](const uint8_t* r, size_t b, float lo, float, float a) {
    return f16_to_f32(load_u16(r + 20 * b)) / 2 + std::fabs(lo) * 4.9e-4f + a * kRel;
  });
  // Q5_0: as Q4_0 with 32 levels: ≤ |d|, d = extreme / -16
  check_blocks(DType::Q5_0, x, 32, [](const uint8_t* r, size_t b, float, float, float a) {
    return std::fabs(f16_to_f32(load_u16(r + 22 * b))) + a * kRel;
  });
  // Most Q4_0 errors are within |d|/2: the mean error is well below the worst case.
  const auto y = decode(DType::Q4_0, encode(DType::Q4_0, x), 1024);
  double mean = 0.0;
  for (size_t i = 0; i < x.size(); ++i) mean += std::fabs(x[i] - y[i]);
  EXPECT_LT(mean / 1024, 0.05 * 2.5 / 8 / 2);
}

TEST(QuantRoundTrip, PlainFloatTargets) {
  const std::vector<float> x = {1.0f, -2.5f, 65504.0f, 1e-8f, 3.14159265f, -0.0f, 1e30f, 0.1f};
  const auto f16 = decode(DType::F16, encode(DType::F16, x), 8);
  const auto bf16 = decode(DType::BF16, encode(DType::BF16, x), 8);
  const auto f32 = decode(DType::F32, encode(DType::F32, x), 8);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(f16[i], f16_to_f32(f32_to_f16(x[i])));
    EXPECT_EQ(bf16[i], bf16_to_f32(f32_to_bf16(x[i])));
    EXPECT_EQ(f32[i], x[i]);
  }
  EXPECT_EQ(f16[0], 1.0f);
  EXPECT_EQ(f16[1], -2.5f);
  EXPECT_TRUE(std::isinf(f16[6]));
  EXPECT_EQ(bf16[6], bf16_to_f32(f32_to_bf16(1e30f)));
}

TEST(Nf4, CodebookIsQLoRAs) {
  const float expected[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                              -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                              0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
                              0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                              0.7229568362236023f, 1.0f};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(kNf4Codebook[size_t(i)], expected[i]) << i;
}

TEST(Nf4, DecodesHandBuiltRowWithDoubleQuantizedScales) {
  const int64_t k = 128;  // 2 blocks, 1 group
  std::vector<uint8_t> row(row_bytes(DType::NF4, k));
  ASSERT_EQ(row.size(), 64u + 2u + 8u);
  for (int j = 0; j < 32; ++j) {
    row[size_t(j)] = uint8_t((j & 15) | ((15 - (j & 15)) << 4));  // block 0
    row[size_t(32 + j)] = uint8_t(7 | (15 << 4));                  // block 1: 0.0 and 1.0
  }
  row[64] = 130;  // absmax'_0 = (130 - 128) * 0.5 + 2 = 3
  row[65] = 126;  // absmax'_1 = (126 - 128) * 0.5 + 2 = 1
  store_f32(&row[66], 0.5f);
  store_f32(&row[70], 2.0f);
  EXPECT_EQ(nf4_block_absmax(row.data(), k, 0), 3.0f);
  EXPECT_EQ(nf4_block_absmax(row.data(), k, 1), 1.0f);
  const auto y = decode(DType::NF4, row, k);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(y[size_t(j)], 3.0f * kNf4Codebook[size_t(j & 15)]);
    EXPECT_EQ(y[size_t(32 + j)], 3.0f * kNf4Codebook[size_t(15 - (j & 15))]);
    EXPECT_EQ(y[size_t(64 + j)], 0.0f);
    EXPECT_EQ(y[size_t(96 + j)], 1.0f);
  }
  EXPECT_EQ(y[0], -3.0f);
}

TEST(Nf4, ErrorWithinHalfGapPlusDoubleQuantError) {
  // 300 blocks: two double-quantization groups (256 + 44), block scales spread
  // over two decades so the 8-bit scale codes matter.
  const int64_t k = 64 * 300;
  auto x = normal_values(size_t(k), 4);
  for (int64_t b = 0; b < k / 64; ++b)
    for (int64_t j = 0; j < 64; ++j) x[size_t(b * 64 + j)] *= 0.1f + float(b % 37) * 0.3f;
  const auto row = encode(DType::NF4, x);
  const auto y = decode(DType::NF4, row, k);
  float max_half_gap = 0.0f;
  for (int i = 0; i < 15; ++i) max_half_gap = std::max(max_half_gap, (kNf4Codebook[size_t(i + 1)] - kNf4Codebook[size_t(i)]) / 2);
  EXPECT_NEAR(max_half_gap, (1.0f - 0.6961928f) / 2, 1e-6f);
  double dq_err_max = 0.0;  // |absmax - absmax'|, in units of the group's gscale
  for (int64_t b = 0; b < k / 64; ++b) {
    float amax = 0.0f;
    for (int64_t j = 0; j < 64; ++j) amax = std::max(amax, std::fabs(x[size_t(b * 64 + j)]));
    const float s = nf4_block_absmax(row.data(), k, b);  // what decoding uses
    const float gscale = load_f32(row.data() + nf4_group_offset(k) + (b / kNf4Group) * 8);
    dq_err_max = std::max(dq_err_max, double(std::fabs(amax - s) / gscale));
    const float tol = max_half_gap * s + std::fabs(amax - s) + amax * 1e-6f;
    for (int64_t j = 0; j < 64; ++j) {
      const size_t i = size_t(b * 64 + j);
      ASSERT_LE(std::fabs(x[i] - y[i]), tol) << "element " << i;
      // decoded values are exactly the double-quantized scale times a level
      ASSERT_TRUE(std::any_of(kNf4Codebook.begin(), kNf4Codebook.end(), [&](float c) { return s * c == y[i]; }));
    }
  }
  EXPECT_GT(dq_err_max, 0.01);     // the scales really are 8-bit ...
  EXPECT_LE(dq_err_max, 0.5001);   // ... and within half a step of the true absmax
}

TEST(QuantRoundTrip, ZeroAndConstantRows) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::I8_B32, DType::I8_B64, DType::I8_B128,
                  DType::I4_B32, DType::I4M_B32, DType::NF4}) {
    const std::vector<float> zeros(256, 0.0f);
    for (float v : decode(t, encode(t, zeros), 256)) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
  const std::vector<float> twos(64, 2.0f);
  // formats whose levels hit a constant exactly (extreme -> -8, min, or absmax * 1.0)
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::I4M_B32, DType::NF4})
    for (float v : decode(t, encode(t, twos), 64)) ASSERT_EQ(v, 2.0f) << dtype_name(t);
}

TEST(QuantRoundTrip, NonFiniteInputsAreRejectedByBlockFormats) {
  auto x = normal_values(64, 5);
  std::vector<uint8_t> row(row_bytes(DType::NF4, 64));
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    x[17] = bad;
    for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::I8_B32, DType::I4_B32, DType::I4M_B32,
                    DType::NF4}) {
      try {
        quantize_row(t, x.data(), row.data(), 64);
        ADD_FAILURE() << dtype_name(t) << " accepted " << bad;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("element 17"), std::string::npos) << e.what();
      }
    }
  }
  // plain float targets carry NaN through
  std::vector<uint8_t> h(128);
  quantize_row(DType::F16, x.data(), h.data(), 64);
  float y[64];
  dequantize_row(DType::F16, h.data(), y, 64);
  EXPECT_TRUE(std::isinf(y[17]));
  // values whose f16 block scale overflows
  std::vector<float> huge(32, 1e9f);
  std::vector<uint8_t> q(34);
  EXPECT_THROW(quantize_row(DType::Q8_0, huge.data(), q.data(), 32), Error);
}

TEST(QuantRoundTrip, LengthNotAMultipleOfTheBlock) {
  std::vector<float> x(100, 1.0f);
  std::vector<uint8_t> row(1024);
  EXPECT_THROW(quantize_row(DType::Q4_0, x.data(), row.data(), 33), Error);
  EXPECT_THROW(quantize_row(DType::I8_B128, x.data(), row.data(), 64), Error);
  EXPECT_THROW(quantize_row(DType::NF4, x.data(), row.data(), 96), Error);
  EXPECT_THROW(dequantize_row(DType::I4_B32, row.data(), x.data(), 48), Error);
  EXPECT_THROW(quantize(Tensor::from_vector(std::vector<float>(66, 0.0f), {2, 33}), DType::Q8_0), Error);
  EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), row.data(), 256), Error);  // decode-only
  EXPECT_FALSE(can_quantize_to(DType::Q6_K));
}
