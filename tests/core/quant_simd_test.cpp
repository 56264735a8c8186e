// The fast (AVX2) segment decoders used by matmul give the same bits as the
// scalar reference codecs, for whole rows and for slabs inside a row.
#include <cstdint>
#include <gtest/gtest.h>

#include <cstring>

#include "core/cpu/qgemm_decode.h"
#include "core/quant/blocks.h"
#include "tests/core/quant_test_util.h"

using namespace zeroth;

namespace {
const DType kAll[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                      DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::I8_B32, DType::I8_B64, DType::I8_B128,
                      DType::I4_B32, DType::I4M_B32, DType::NF4};
}

TEST(QuantSimd, FastDecodersMatchScalarBitForBit) {
  const int64_t k = 1536;  // 6 K-quant super-blocks; NF4 groups: Nf4SecondGroupScales
  for (DType t : kAll) {
    const Tensor w = test::make_weight(t, 3, k, 11);
    for (int64_t r = 0; r < 3; ++r) {
      const auto* row = w.row(r);
      std::vector<float> a(static_cast<size_t>(k)), b(static_cast<size_t>(k));
      decode_row_segment_scalar(t, row, k, 0, k, a.data());
      decode_row_segment_fast(t, row, k, 0, k, b.data());
      ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << dtype_name(t);
      // a slab in the middle, as matmul decodes it
      std::vector<float> c(256);
      decode_row_segment_fast(t, row, k, 512, 256, c.data());
      ASSERT_EQ(std::memcmp(a.data() + 512, c.data(), 256 * 4), 0) << dtype_name(t);
    }
  }
}

TEST(QuantSimd, Nf4SecondGroupScales) {
  const int64_t k = 64 * 260;  // block 256+ lives in the second double-quantization group
  const Tensor w = test::make_weight(DType::NF4, 1, k, 12);
  std::vector<float> a(static_cast<size_t>(k)), b(256);
  decode_row_segment_scalar(DType::NF4, w.row(0), k, 0, k, a.data());
  decode_row_segment_fast(DType::NF4, w.row(0), k, 64 * 256, 256, b.data());
  EXPECT_EQ(std::memcmp(a.data() + 64 * 256, b.data(), 256 * 4), 0);
}
