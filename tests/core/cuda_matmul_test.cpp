// The CUDA decoders and quantized matmul (core/cuda_matmul.h) against the CPU:
// every decoder bit for bit against dequantize_row (f32) and against its bf16
// rounding; the f32 GEMM path against matmul_reference (double accumulation) by
// normalized error, the bf16 path with bf16's tolerance, both across several
// tiles. Skipped without a GPU (a failure under ZEROTH_REQUIRE_GPU=1).
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/cuda_matmul.h"
#ifdef ZEROTH_HAVE_CUDA
#include "core/cuda/cublas_loader.h"
#endif
#include "core/error.h"
#include "core/half.h"
#include "core/matmul.h"
#include "core/quant/nfk.h"
#include "core/quant/quant.h"
#include "tests/core/cuda_test_util.h"
#include "tests/core/quant_test_util.h"

namespace zeroth {
namespace {

using test::bit_mismatches;
using test::normal_values;
using test::normalized_error;
using test::to_device;

// Every dtype with a CUDA decoder: the fixed formats, then the NF family's 40.
std::vector<DType> every_format() {
  std::vector<DType> f = {DType::F32,    DType::F16,    DType::BF16,    DType::Q8_0,   DType::Q4_0,
                          DType::Q4_1,   DType::Q5_0,   DType::Q4_K,   DType::Q5_K,    DType::Q6_K,   DType::I8_B32,
                          DType::I8_B64, DType::I8_B128, DType::I4_B32, DType::I4M_B32, DType::NF4};
  for (DType t : nf_family()) f.push_back(t);
  return f;
}
const std::vector<DType> kFormats = every_format();

// f32 GEMM (no TF32): f32 accumulation over k = 1024 vs double, normalized by max|y|.
constexpr double kF32GemmTol = 1e-5;
// bf16 inputs (8 significant bits each, rounding error 2^-9 relative) with f32
// accumulation: the error of a dot of N(0,1) terms is ~ 2^-9·sqrt(k), max|y| ~ 4·sqrt(k).
constexpr double kBf16GemmTol = 1e-2;
// TF32 inputs (11 significant bits, rounding error 2^-11 relative): a quarter of bf16's.
constexpr double kTf32GemmTol = 3e-3;

std::vector<float> dequantize_cpu(const Tensor& w, int64_t r0, int64_t rows) {
  std::vector<float> out(size_t(rows * w.cols()));
  for (int64_t r = 0; r < rows; ++r) dequantize_row(w.dtype(), w.row(r0 + r), out.data() + r * w.cols(), w.cols());
  return out;
}

TEST(DequantCuda, EveryFormatEqualsCpuBitForBit) {
  ZEROTH_REQUIRE_GPU();
  // 16640 = 65 super-blocks of 256 and 260 NF4 blocks (two double-quantization groups).
  for (auto [n, k] : {std::pair<int64_t, int64_t>{7, 16640}, {70, 512}})
    for (DType t : kFormats) {
      const Tensor w = test::make_weight(t, n, k, 21);
      const Tensor wd = w.to(Device::CUDA);
      const int64_t r0 = 2, rows = n - 3;
      const auto ref = dequantize_cpu(w, r0, rows);
      DeviceArray<float> out(ref.size());
      dequantize_rows_cuda(wd, r0, rows, out.data());
      EXPECT_EQ(bit_mismatches(out.download(), ref), 0) << dtype_name(t) << " " << n << " x " << k;

      DeviceArray<uint16_t> out16(ref.size());
      dequantize_rows_cuda_bf16(wd, r0, rows, out16.data());
      const auto got16 = out16.download();
      int64_t bad = 0;
      for (size_t i = 0; i < ref.size(); ++i) bad += got16[i] != f32_to_bf16(ref[i]);
      EXPECT_EQ(bad, 0) << dtype_name(t) << " bf16 " << n << " x " << k;
    }
}

TEST(DequantCuda, RejectsHostWeightsAndUnsupportedFormats) {
  ZEROTH_REQUIRE_GPU();
  DeviceArray<float> out(64);
  EXPECT_THROW(dequantize_rows_cuda(test::make_weight(DType::Q8_0, 2, 32, 1), 0, 1, out.data()), Error);
  const Tensor wd = test::make_weight(DType::Q8_0, 2, 32, 1).to(Device::CUDA);
  EXPECT_THROW(dequantize_rows_cuda(wd, 1, 2, out.data()), Error);
  for (DType t : kFormats) EXPECT_TRUE(cuda_can_dequantize(t)) << dtype_name(t);
  EXPECT_FALSE(cuda_can_dequantize(DType::I32));
  const Tensor wi = Tensor::empty(DType::I32, {2, 32}).to(Device::CUDA);
  EXPECT_THROW(dequantize_rows_cuda(wi, 0, 1, out.data()), Error);
}

// y = x · Wᵀ for m rows against matmul_reference, with tiles small enough that
// W is decoded in several pieces (and a last partial one).
void check_matmul(GemmPrecision p, double tol) {
  const int64_t m = 33, n = 300, k = 1024, ldx = k + 8, ldy = n + 5;
  const auto x = normal_values(size_t(m * ldx), 31);
  for (DType t : kFormats) {
    const Tensor w = test::make_weight(t, n, k, 32);
    std::vector<float> ref(size_t(m * ldy), 0.0f);
    matmul_reference(x.data(), m, ldx, w, ref.data(), ldy);
    CudaMatmul mm({p, size_t(128) * size_t(k) * (p == GemmPrecision::BF16 ? 2 : 4)});  // 128-row tiles
    ASSERT_EQ(mm.tile_rows(k), 128);
    const Tensor wd = w.to(Device::CUDA);
    auto xd = to_device(x);
    DeviceArray<float> yd(ref.size());
    cuda_memset_zero(yd.data(), yd.bytes());
    mm.matmul(xd.data(), m, ldx, wd, yd.data(), ldy);
    auto y = yd.download();
    std::vector<float> got, want;  // the written (m, n) part only
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        got.push_back(y[size_t(i * ldy + j)]);
        want.push_back(ref[size_t(i * ldy + j)]);
      }
    EXPECT_LE(normalized_error(got, want), tol) << dtype_name(t);
  }
}

TEST(MatmulCuda, F32PathMatchesReference) {
  ZEROTH_REQUIRE_GPU();
  check_matmul(GemmPrecision::F32, kF32GemmTol);
}

TEST(MatmulCuda, Bf16PathMatchesReferenceWithinBf16Rounding) {
  ZEROTH_REQUIRE_GPU();
  check_matmul(GemmPrecision::BF16, kBf16GemmTol);
}

TEST(MatmulCuda, Tf32PathMatchesReferenceWithinTf32Rounding) {
  ZEROTH_REQUIRE_GPU();
  check_matmul(GemmPrecision::TF32, kTf32GemmTol);
}

// c = alpha·a·bᵀ + beta·c with strided rows, against a double-accumulated loop.
TEST(MatmulCuda, PlainF32GemmMatchesReference) {
  ZEROTH_REQUIRE_GPU();
  const int64_t m = 37, n = 19, k = 600, lda = k + 3, ldb = k + 1, ldc = n + 2;
  const float alpha = 0.75f, beta = 1.0f;
  const auto a = normal_values(size_t(m * lda), 41), b = normal_values(size_t(n * ldb), 42);
  const auto c0 = normal_values(size_t(m * ldc), 43);
  std::vector<float> want = c0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t e = 0; e < k; ++e) s += double(a[size_t(i * lda + e)]) * double(b[size_t(j * ldb + e)]);
      want[size_t(i * ldc + j)] = float(double(alpha) * s + double(beta) * double(c0[size_t(i * ldc + j)]));
    }
  auto ad = to_device(a), bd = to_device(b);
  // Every precision setting keeps these products in f32 (the adapters' low-rank parts).
  for (GemmPrecision p : {GemmPrecision::F32, GemmPrecision::TF32, GemmPrecision::BF16}) {
    CudaMatmul mp({p});
    auto cd = to_device(c0);
    mp.gemm_f32(ad.data(), m, k, lda, bd.data(), n, ldb, cd.data(), ldc, alpha, beta);
    EXPECT_LE(normalized_error(cd.download(), want), kF32GemmTol) << gemm_precision_name(p);
  }
  CudaMatmul mm({GemmPrecision::F32});
  auto cd = to_device(c0);
  // k = 0: c = beta·c on the n columns of each row; the stride's padding untouched.
  // (cuBLAS itself returns early for k = 0 and leaves c as it was.)
  mm.gemm_f32(ad.data(), m, 0, lda, bd.data(), n, ldb, cd.data(), ldc, 1.0f, 0.5f);
  const auto halved = cd.download();
  for (size_t i = 0; i < halved.size(); ++i)
    ASSERT_EQ(halved[i], int64_t(i) % ldc < n ? c0[i] * 0.5f : c0[i]) << i;
  // beta = 0 overwrites c's n columns, NaNs in it included (k = 0: with zeros);
  // the padding stays as it was.
  for (const int64_t kk : {int64_t(0), k}) {
    std::vector<float> nan(c0.size(), NAN);
    auto nd = to_device(nan);
    mm.gemm_f32(ad.data(), m, kk, lda, bd.data(), n, ldb, nd.data(), ldc, 1.0f, 0.0f);
    const auto got = nd.download();
    for (size_t i = 0; i < got.size(); ++i) {
      if (int64_t(i) % ldc >= n)
        ASSERT_TRUE(std::isnan(got[i])) << "k " << kk << ", " << i;
      else if (kk == 0)
        ASSERT_EQ(got[i], 0.0f) << i;
      else
        ASSERT_TRUE(std::isfinite(got[i])) << i;
    }
  }
  EXPECT_THROW(mm.gemm_f32(ad.data(), m, k, k - 1, bd.data(), n, ldb, cd.data(), ldc, 1, 0), Error);
}

TEST(GemmPrecision, NamesParseBack) {
  for (GemmPrecision p : {GemmPrecision::F32, GemmPrecision::TF32, GemmPrecision::BF16})
    EXPECT_EQ(parse_gemm_precision(gemm_precision_name(p), "model.cuda_precision"), p);
  try {
    parse_gemm_precision("fp16", "model.cuda_precision");
    FAIL() << "fp16 parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.cuda_precision"), std::string::npos) << e.what();
  }
}

#ifdef ZEROTH_HAVE_CUDA
// cuBLAS is loaded on first use: the library and every entry point resolve on
// any machine with the toolkit, GPU or not (the status strings need no device).
TEST(CublasLoader, ResolvesEveryEntryPoint) {
  const cuda::CublasApi& api = cuda::cublas();
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.destroy, nullptr);
  EXPECT_NE(api.set_math_mode, nullptr);
  EXPECT_NE(api.gemm_ex, nullptr);
  ASSERT_NE(api.status_name, nullptr);
  ASSERT_NE(api.status_string, nullptr);
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
  EXPECT_NE(std::string(api.status_string(CUBLAS_STATUS_NOT_INITIALIZED)), "");
  EXPECT_EQ(&cuda::cublas(), &api);  // loaded once
}
#endif

TEST(MatmulCudaStub, SaysBuiltWithoutCuda) {
  if (cuda_built()) GTEST_SKIP() << "built with CUDA: the stub backend is not linked";
  EXPECT_FALSE(cuda_can_dequantize(DType::Q4_0));
  EXPECT_THROW(CudaMatmul{}, Error);
  float x = 0;
  EXPECT_THROW(dequantize_rows_cuda(test::make_weight(DType::Q8_0, 1, 32, 1), 0, 1, &x), Error);
}

}  // namespace
}  // namespace zeroth
