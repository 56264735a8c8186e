// The NormalFloat family (core/quant/nfk.h): codebooks, layouts, round trips,
// error against bit width, and the matrix product over packed rows.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/matmul.h"
#include "core/quant/blocks.h"
#include "core/quant/nfk.h"
#include "core/quant/quant.h"
#include "tests/core/quant_test_util.h"

using namespace zeroth;

TEST(NfFormats, FourBitCodebookIsQLoRAs) {
  const auto& cb = nf_codebook(4);
  ASSERT_EQ(cb.size(), 16u);
  for (size_t i = 0; i < 16; ++i) EXPECT_NEAR(cb[i], kNf4Codebook[i], 2e-7) << i;
}

TEST(NfFormats, CodebooksAreSortedWithZeroAndEnds) {
  for (int bits : {2, 3, 4, 8}) {
    const auto& cb = nf_codebook(bits);
    ASSERT_EQ(cb.size(), size_t(1) << bits);
    EXPECT_EQ(cb.front(), -1.0f);
    EXPECT_EQ(cb.back(), 1.0f);
    EXPECT_TRUE(std::is_sorted(cb.begin(), cb.end()));
    EXPECT_EQ(std::adjacent_find(cb.begin(), cb.end()), cb.end()) << "levels repeat at " << bits << " bits";
    EXPECT_EQ(std::count(cb.begin(), cb.end(), 0.0f), 1) << bits;
  }
  EXPECT_THROW(nf_codebook(5), Error);
}

TEST(NfFormats, NamesLayoutsAndBits) {
  const auto family = nf_family();
  ASSERT_EQ(family.size(), size_t(kNfFormatCount));
  for (DType t : family) {
    const NfFormat f = nf_format(t);
    EXPECT_EQ(nf_dtype(f), t);
    EXPECT_EQ(parse_dtype(f.name()), t) << f.name();
    EXPECT_EQ(dtype_name(t), f.name());
    EXPECT_EQ(dtype_info(t).block_elems, f.block);
    EXPECT_TRUE(is_quantized(t));
    EXPECT_THROW(row_bytes(t, f.block + 8), Error);
  }
  // 576 = 9 blocks of 64: 216 code bytes + 9 scale codes + one 8-byte group.
  EXPECT_EQ(row_bytes(*parse_dtype("nf3_b64"), 576), 216u + 9u + 8u);
  EXPECT_EQ(row_bytes(*parse_dtype("nf2_b16_f16"), 64), 16u + 8u);
  EXPECT_EQ(row_bytes(*parse_dtype("nf8_b256"), 256 * 300), size_t(256 * 300 + 300 + 2 * 8));
  EXPECT_NEAR(nf_format(*parse_dtype("nf4_b64")).bits_per_element(576), 4.0 + 8.0 / 64 + 64.0 / 576, 1e-12);
  EXPECT_THROW(nf_dtype({5, 64, NfScales::Q8}), Error);
  EXPECT_THROW(nf_dtype({4, 48, NfScales::Q8}), Error);
}

// decode(encode(x)) == roundtrip_nfk(x) bit for bit; error falls with the bit
// width; values on the codebook grid with an exact scale come back exactly.
TEST(NfFormats, RoundTripsAndErrorFallsWithBits) {
  const int64_t k = 512 * 3;  // 6 blocks of 256, 96 of 16
  const auto x = test::normal_values(size_t(k), 3, 0.02f);
  double prev_err[2][5];
  for (int bi = 0; bi < 4; ++bi)
    for (int ki = 0; ki < 5; ++ki)
      for (int si = 0; si < 2; ++si) {
        const DType t = nf_dtype({kNfBits[bi], kNfBlocks[ki], si ? NfScales::F16 : NfScales::Q8});
        std::vector<uint8_t> row(row_bytes(t, k));
        quantize_row(t, x.data(), row.data(), k);
        std::vector<float> y(static_cast<size_t>(k)), z(static_cast<size_t>(k));
        dequantize_row(t, row.data(), y.data(), k);
        roundtrip_nfk(t, x.data(), k, z.data());
        ASSERT_EQ(std::memcmp(y.data(), z.data(), size_t(k) * 4), 0) << dtype_name(t);
        // A segment decodes like the whole row.
        std::vector<float> seg(256);
        decode_row_segment_scalar(t, row.data(), k, 512, 256, seg.data());
        ASSERT_EQ(std::memcmp(seg.data(), y.data() + 512, 256 * 4), 0) << dtype_name(t);
        double err = 0, norm = 0;
        for (int64_t i = 0; i < k; ++i) {
          err += double(x[size_t(i)] - y[size_t(i)]) * double(x[size_t(i)] - y[size_t(i)]);
          norm += double(x[size_t(i)]) * double(x[size_t(i)]);
        }
        const double rel = err / norm;
        // Gaussian data, relative MSE measured 0.20-0.38 at 2 bits, 0.04 at 3,
        // 0.01 at 4, 1-2e-4 at 8 (the normal-quantile grid is coarse in the
        // tails); bounds about 1.2-2x above.
        const double bound[4] = {0.45, 0.08, 0.02, 4e-4};
        EXPECT_LT(rel, bound[bi]) << dtype_name(t);
        if (bi > 0) {
          EXPECT_LT(rel, prev_err[si][ki]) << dtype_name(t) << " is no better than fewer bits";
        }
        prev_err[si][ki] = rel;
      }
  // On the grid: x = level · 1 in every block (scale 1 is exact in f16 and q8).
  for (int bits : {2, 3, 4, 8}) {
    const auto& cb = nf_codebook(bits);
    std::vector<float> v(256);
    for (size_t i = 0; i < v.size(); ++i) v[i] = i % 32 == 0 ? 1.0f : cb[i % cb.size()];  // absmax 1 per block
    for (NfScales s : {NfScales::Q8, NfScales::F16}) {
      const DType t = nf_dtype({bits, 32, s});
      std::vector<float> y(v.size());
      roundtrip_nfk(t, v.data(), int64_t(v.size()), y.data());
      EXPECT_EQ(y, v) << dtype_name(t);
    }
  }
}

TEST(NfFormats, ZeroRowsAndNonFinite) {
  const DType t = *parse_dtype("nf3_b32");
  std::vector<float> x(64, 0.0f), y(64, 1.0f);
  std::vector<uint8_t> row(row_bytes(t, 64));
  quantize_row(t, x.data(), row.data(), 64);
  dequantize_row(t, row.data(), y.data(), 64);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  x[5] = NAN;
  EXPECT_THROW(quantize_row(t, x.data(), row.data(), 64), Error);
}

TEST(NfFormats, MatmulOverPackedRowsMatchesReference) {
  for (const char* name : {"nf2_b16", "nf3_b64_f16", "nf4_b128", "nf8_b256_f16"}) {
    const DType t = *parse_dtype(name);
    const int64_t n = 21, k = 768, m = 5;
    const Tensor w = test::make_weight(t, n, k, 9);
    const auto x = test::normal_values(size_t(m * k), 10);
    std::vector<float> y(size_t(m * n)), ref(size_t(m * n));
    matmul(x.data(), m, k, w, y.data(), n, 2);
    matmul_reference(x.data(), m, k, w, ref.data(), n);
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << name;
  }
}
