// matmul_int8 (int8 activations, integer block dot products) against the
// scalar reference, and against the reference fed the int8-rounded activations
// (which it must match to f32 rounding); invariances; fallback for other dtypes.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cpu/qgemm.h"
#include "core/matmul.h"
#include "core/quant/quant.h"
#include "tests/core/quant_test_util.h"

using namespace zeroth;

namespace {

const DType kIntTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::I8_B32,
                           DType::I8_B64, DType::I8_B128, DType::I4_B32, DType::I4M_B32};
constexpr float kSentinel = 12345.0f;

double normalized_error(const std::vector<float>& y, const std::vector<float>& ref, int64_t m, int64_t n, int64_t ldy) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      num = std::max(num, double(std::fabs(y[size_t(i * ldy + j)] - ref[size_t(i * ldy + j)])));
      den = std::max(den, double(std::fabs(ref[size_t(i * ldy + j)])));
    }
  return den > 0 ? num / den : num;
}

// x with every 32-block replaced by what the int8 path multiplies: d·round(x/d), d = absmax/127.
std::vector<float> int8_rounded(const std::vector<float>& x, int64_t m, int64_t k, int64_t ldx) {
  std::vector<float> r = x;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t b = 0; b < k; b += 32) {
      float amax = 0.0f;
      for (int64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(i * ldx + b + j)]));
      if (amax == 0.0f) continue;
      const float inv = 127.0f / amax, d = amax / 127.0f;
      for (int64_t j = 0; j < 32; ++j) {
        float& v = r[size_t(i * ldx + b + j)];
        v = d * std::nearbyint(v * inv);
      }
    }
  return r;
}

}  // namespace

TEST(QgemmInt8, CloseToReferenceAndExactOnRoundedActivations) {
  for (DType t : kIntTypes) {
    ASSERT_TRUE(matmul_int8_supported(t)) << dtype_name(t);
    const int64_t block = dtype_info(t).block_elems;
    const int64_t k = block == 256 ? 768 : (block == 128 ? 640 : 576);
    for (int64_t m : {1, 2, 3, 4, 5, 8})
      for (int64_t n : {1, 13, 40}) {
        const uint32_t seed = uint32_t(11 * m + n);
        const Tensor w = test::make_weight(t, n, k, seed);
        const int64_t ldx = k + 7, ldy = n + 3;  // strided x and y
        const auto x = test::normal_values(size_t(m * ldx), seed + 1);
        std::vector<float> y(size_t(m * ldy), kSentinel), ref(y), ref_q(y);
        matmul_int8(x.data(), m, ldx, w, y.data(), ldy, 2);
        matmul_reference(x.data(), m, ldx, w, ref.data(), ldy);
        const auto xq = int8_rounded(x, m, k, ldx);
        matmul_reference(xq.data(), m, ldx, w, ref_q.data(), ldy);
        const double err = normalized_error(y, ref, m, n, ldy);
        // activation rounding: a few 1e-3 of max |y| (observed 3.5e-3 .. 9.7e-3 here), and
        // not zero (the integer path really ran). With only a few outputs max |y| can be a
        // near-cancelled dot product, so the relative bound is checked where there are >= 13.
        if (m * n >= 13) {
          EXPECT_LT(err, 2e-2) << dtype_name(t) << " m=" << m << " n=" << n;
        }
        EXPECT_GT(err, 1e-6) << dtype_name(t) << " m=" << m << " n=" << n;
        // The integer arithmetic itself is exact: against the rounded activations only f32
        // rounding of the scaled block sums remains, relative to Σ|x̂|·|w| (offset formats
        // add two terms that can cancel, so |y| itself is no scale for that rounding).
        std::vector<float> ax(xq.size()), scale(y.size());
        for (size_t e = 0; e < xq.size(); ++e) ax[e] = std::fabs(xq[e]);
        const Tensor wf = dequantize(w);
        std::vector<float> aw(wf.data<float>(), wf.data<float>() + n * k);
        for (auto& v : aw) v = std::fabs(v);
        matmul_reference(ax.data(), m, ldx, Tensor::from_vector(aw, {n, k}), scale.data(), ldy);
        double exact_err = 0.0, exact_den = 0.0;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            exact_err = std::max(exact_err, double(std::fabs(y[size_t(i * ldy + j)] - ref_q[size_t(i * ldy + j)])));
            exact_den = std::max(exact_den, double(scale[size_t(i * ldy + j)]));
          }
        EXPECT_LT(exact_err / exact_den, 1e-6) << dtype_name(t) << " m=" << m << " n=" << n;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = n; j < ldy; ++j) ASSERT_EQ(y[size_t(i * ldy + j)], kSentinel);
      }
  }
}

TEST(QgemmInt8, ThreadsAndBatchingDoNotChangeResults) {
  for (DType t : {DType::Q8_0, DType::Q4_1, DType::Q5_K, DType::I8_B128}) {
    const int64_t m = 7, n = 77, k = 512;
    const Tensor w = test::make_weight(t, n, k, 41);
    const auto x = test::normal_values(size_t(m * k), 42);
    std::vector<float> y1(size_t(m * n)), y2(size_t(m * n)), one(static_cast<size_t>(n));
    matmul_int8(x.data(), m, k, w, y1.data(), n, 1);
    matmul_int8(x.data(), m, k, w, y2.data(), n, 2);
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0) << dtype_name(t);
    for (int64_t i : {0, 5, 6}) {
      matmul_int8(x.data() + i * k, 1, k, w, one.data(), n, 2);
      EXPECT_EQ(std::memcmp(one.data(), y1.data() + i * n, size_t(n) * 4), 0) << dtype_name(t) << " row " << i;
    }
  }
}

TEST(QgemmInt8, OtherDtypesRunTheFloatPath) {
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::NF4}) {
    EXPECT_FALSE(matmul_int8_supported(t));
    const int64_t m = 2, n = 9, k = 256;
    const Tensor w = test::make_weight(t, n, k, 51);
    const auto x = test::normal_values(size_t(m * k), 52);
    std::vector<float> a(size_t(m * n)), b(size_t(m * n));
    matmul_int8(x.data(), m, k, w, a.data(), n, 2);
    matmul(x.data(), m, k, w, b.data(), n, 2);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << dtype_name(t);
  }
}

TEST(QgemmInt8, NonFiniteActivationsGiveNaN) {
  const int64_t n = 5, k = 64;
  const Tensor w = test::make_weight(DType::Q4_0, n, k, 61);
  auto x = test::normal_values(size_t(2 * k), 62);
  x[size_t(k + 40)] = INFINITY;  // row 1 only
  std::vector<float> y(size_t(2 * n));
  matmul_int8(x.data(), 2, k, w, y.data(), n);
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_TRUE(std::isfinite(y[size_t(j)]));
    EXPECT_TRUE(std::isnan(y[size_t(n + j)]));
  }
}
