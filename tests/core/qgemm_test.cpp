// matmul (tiled, packed-weight fast path) against matmul_reference (scalar,
// double accumulation) for every weight dtype, odd shapes and strides; thread
// count independence; whole-tensor quantize/dequantize.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/matmul.h"
#include "core/quant/quant.h"
#include "tests/core/quant_test_util.h"

using namespace zeroth;

namespace {

const DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                              DType::Q4_1, DType::Q5_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::I8_B32,
                              DType::I8_B64, DType::I8_B128, DType::I4_B32, DType::I4M_B32, DType::NF4};

constexpr float kSentinel = 12345.0f;

// max |y - y_ref| / max |y_ref| over the (m, n) results.
double normalized_error(const std::vector<float>& y, const std::vector<float>& ref, int64_t m, int64_t n, int64_t ldy) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      num = std::max(num, double(std::fabs(y[size_t(i * ldy + j)] - ref[size_t(i * ldy + j)])));
      den = std::max(den, double(std::fabs(ref[size_t(i * ldy + j)])));
    }
  return den > 0 ? num / den : num;
}

void check_shape(DType t, int64_t m, int64_t n, int64_t k, uint32_t seed) {
  const Tensor w = test::make_weight(t, n, k, seed);
  const int64_t ldx = k + 5, ldy = n + 3;  // strided x and y
  const auto x = test::normal_values(size_t(m * ldx), seed + 1);
  std::vector<float> y(size_t(m * ldy), kSentinel), ref(size_t(m * ldy), kSentinel);
  matmul(x.data(), m, ldx, w, y.data(), ldy, 2);
  matmul_reference(x.data(), m, ldx, w, ref.data(), ldy);
  const double err = normalized_error(y, ref, m, n, ldy);
  EXPECT_LT(err, 1e-5) << dtype_name(t) << " m=" << m << " n=" << n << " k=" << k;
  for (int64_t i = 0; i < m; ++i)  // the gap between rows is untouched
    for (int64_t j = n; j < ldy; ++j) ASSERT_EQ(y[size_t(i * ldy + j)], kSentinel);
}

}  // namespace

TEST(Matmul, MatchesReferenceForEveryDtype) {
  for (DType t : kWeightTypes) {
    const int64_t block = dtype_info(t).block_elems;
    // k spans several 256-slabs and, where the block allows, ends in a partial slab
    const int64_t k = block == 1 ? 579 : (block == 256 ? 768 : (block == 128 ? 640 : 576));
    for (int64_t m : {1, 3, 16, 67})
      for (int64_t n : {1, 13, 40}) check_shape(t, m, n, k, uint32_t(7 * m + n));
  }
}

TEST(Matmul, ReferenceIsTheDefinition) {
  // y = x · Wᵀ with a 2 x 3 weight written out
  const Tensor w = Tensor::from_vector({1, 2, 3, -1, 0, 4}, {2, 3});
  const float x[2 * 3] = {1, 1, 1, 2, 0, -1};
  float y[4], yr[4];
  matmul(x, 2, 3, w, y, 2, 1);
  matmul_reference(x, 2, 3, w, yr, 2);
  const float expected[4] = {6, 3, -1, -6};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(y[i], expected[i]);
    EXPECT_EQ(yr[i], expected[i]);
  }
}

TEST(Matmul, ThreadCountDoesNotChangeResults) {
  for (DType t : {DType::F32, DType::Q4_0, DType::Q6_K, DType::NF4}) {
    const int64_t m = 150, n = 50, k = 512;  // several m blocks and n panels
    const Tensor w = test::make_weight(t, n, k, 21);
    const auto x = test::normal_values(size_t(m * k), 22);
    std::vector<float> y1(size_t(m * n)), y2(size_t(m * n));
    matmul(x.data(), m, k, w, y1.data(), n, 1);
    matmul(x.data(), m, k, w, y2.data(), n, 2);
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0) << dtype_name(t);
    // a row's result does not depend on the other rows in the batch either
    std::vector<float> y_one(static_cast<size_t>(n));
    matmul(x.data() + 77 * k, 1, k, w, y_one.data(), n, 2);
    EXPECT_EQ(std::memcmp(y_one.data(), y1.data() + 77 * n, size_t(n) * 4), 0) << dtype_name(t);
  }
}

TEST(Matmul, EmptyAndBadArguments) {
  const Tensor w = test::make_weight(DType::Q8_0, 4, 64, 3);
  std::vector<float> x(64 * 2, 1.0f), y(8, kSentinel);
  matmul(x.data(), 0, 64, w, y.data(), 4);  // m = 0: nothing written
  EXPECT_EQ(y[0], kSentinel);
  const Tensor w0 = Tensor::empty(DType::F32, {3, 0});
  matmul(x.data(), 2, 0, w0, y.data(), 3);  // k = 0: y = 0
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[5], 0.0f);
  EXPECT_THROW(matmul(x.data(), 2, 32, w, y.data(), 4), Error);  // ldx < k
  EXPECT_THROW(matmul(x.data(), 2, 64, w, y.data(), 3), Error);  // ldy < n
  EXPECT_THROW(matmul(x.data(), 1, 64, Tensor::empty(DType::F32, {64}), y.data(), 1), Error);
  EXPECT_THROW(matmul(x.data(), 1, 64, Tensor::empty(DType::I32, {2, 64}), y.data(), 2), Error);
}

TEST(QuantTensor, QuantizeDequantizeRowsInParallel) {
  const auto v = test::normal_values(6 * 5 * 128, 31);
  const Tensor w = Tensor::from_vector(v, {6, 5, 128});
  for (DType t : {DType::Q4_1, DType::I8_B64, DType::NF4, DType::BF16}) {
    const Tensor q1 = quantize(w, t, 1), q2 = quantize(w, t, 2);
    EXPECT_EQ(q1.dtype(), t);
    EXPECT_EQ(q1.shape(), w.shape());
    ASSERT_EQ(q1.nbytes(), q2.nbytes());
    EXPECT_EQ(std::memcmp(q1.raw(), q2.raw(), q1.nbytes()), 0);
    const Tensor d = dequantize(q2, 2);
    EXPECT_EQ(d.dtype(), DType::F32);
    EXPECT_EQ(d.shape(), w.shape());
    std::vector<float> row(128);
    for (int64_t r = 0; r < 30; ++r) {
      dequantize_row(t, q1.row(r), row.data(), 128);
      ASSERT_EQ(std::memcmp(row.data(), d.data<float>() + r * 128, 128 * 4), 0);
    }
  }
  // from a non-f32 source, and a non-contiguous view
  const Tensor b = quantize(w, DType::BF16);
  const Tensor from_bf16 = quantize(b, DType::Q8_0);
  EXPECT_EQ(from_bf16.shape(), w.shape());
  const Tensor wt = Tensor::from_vector(std::vector<float>(v.begin(), v.begin() + 64 * 32), {64, 32}).transpose(0, 1);
  EXPECT_EQ(quantize(wt, DType::I4_B32).shape(), (Shape{32, 64}));
}

TEST(QuantTensor, ErrorsNameTheRow) {
  auto v = test::normal_values(4 * 64, 32);
  v[2 * 64 + 5] = std::nanf("");
  try {
    quantize(Tensor::from_vector(v, {4, 64}), DType::NF4, 2);
    ADD_FAILURE() << "NaN accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(quantize(Tensor::empty(DType::Q8_0, {1, 32}), DType::Q4_0), Error);
}

TEST(Matmul, EveryTileShapeAndGroupMatchesAndRowsStandAlone) {
  // m = 1..13 covers every microkernel (6×1 panels down to 1×6) and their
  // mixes; n = 200 spans two 96-column groups and a partial 16-column panel;
  // m = 400 spans three x-row blocks.
  for (DType t : {DType::F32, DType::Q4_0}) {
    const int64_t n = 200, k = t == DType::F32 ? 579 : 576;
    const Tensor w = test::make_weight(t, n, k, 71);
    const auto x = test::normal_values(size_t(400 * k), 72);
    std::vector<float> all(size_t(400 * n)), ref(size_t(400 * n));
    matmul(x.data(), 400, k, w, all.data(), n, 2);
    matmul_reference(x.data(), 400, k, w, ref.data(), n);
    EXPECT_LT(normalized_error(all, ref, 400, n, n), 1e-5) << dtype_name(t);
    for (int64_t m = 1; m <= 13; ++m) {
      std::vector<float> y(size_t(m * n));
      const int64_t i0 = 3 * m;  // a batch starting at an arbitrary row
      matmul(x.data() + i0 * k, m, k, w, y.data(), n, 2);
      EXPECT_EQ(std::memcmp(y.data(), all.data() + i0 * n, y.size() * 4), 0) << dtype_name(t) << " m=" << m;
    }
  }
}
