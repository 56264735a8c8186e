// y = x · Wᵀ on CUDA for packed weights (core/cuda_matmul.h): W is decoded a
// tile of rows at a time (core/cuda/dequant.cu) into f32 or bf16 scratch and
// each tile is one cuBLAS GEMM writing its columns of y.
//
// cuBLAS is column-major: row-major y (m, n) is column-major yᵀ (n, m) with
// leading dimension ldy, and yᵀ[r0 : r0+nt, :] = W_tile (nt, k) · xᵀ (k, m).
// Row-major W_tile (nt, k) is column-major (k, nt) with ld k, hence op(A) = T;
// row-major x (m, k) is column-major (k, m) with ld ldx, hence op(B) = N.
#include <cstdint>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>

#include "core/cuda/cublas_loader.h"
#include "core/cuda/dequant_kernels.h"
#include "core/cuda/ops_kernels.h"
#include "core/cuda_matmul.h"
#include "core/device_array.h"
#include "core/error.h"

namespace zeroth {
namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail("{}: {} ({})", what, cuda::cublas().status_string(s), cuda::cublas().status_name(s));
}
void check_weight(const Tensor& w, const char* who) {
  ZEROTH_CHECK(w.defined() && w.device() == Device::CUDA, "{}: the weight {} is not in CUDA memory (use w.to(Device::CUDA))",
               who, w.defined() ? w.describe() : std::string("(undefined)"));
  ZEROTH_CHECK(w.is_contiguous(), "{}: the weight {} is not contiguous", who, w.describe());
  ZEROTH_CHECK(cuda::dequant_supported(w.dtype()), "{}: no CUDA decoder for {} weights ({})", who,
               dtype_name(w.dtype()), w.describe());
}
void check_rows(const Tensor& w, int64_t r0, int64_t rows, const char* who) {
  check_weight(w, who);
  ZEROTH_CHECK(r0 >= 0 && rows >= 0 && r0 + rows <= w.rows(), "{}: rows [{}, {}) outside the {} rows of {}", who, r0,
               r0 + rows, w.rows(), w.describe());
}
const uint8_t* row_ptr(const Tensor& w, int64_t r) { return static_cast<const uint8_t*>(w.raw()) + r * w.row_bytes(); }

}  // namespace

bool cuda_can_dequantize(DType t) { return cuda::dequant_supported(t); }

void dequantize_rows_cuda(const Tensor& w, int64_t r0, int64_t rows, float* out) {
  check_rows(w, r0, rows, "dequantize_rows_cuda");
  check_cuda(cuda::launch_dequantize(w.dtype(), row_ptr(w, r0), w.row_bytes(), w.cols(), rows, out, nullptr),
             "dequantize_rows_cuda: kernel launch");
}

void dequantize_rows_cuda_bf16(const Tensor& w, int64_t r0, int64_t rows, uint16_t* out) {
  check_rows(w, r0, rows, "dequantize_rows_cuda_bf16");
  check_cuda(cuda::launch_dequantize(w.dtype(), row_ptr(w, r0), w.row_bytes(), w.cols(), rows, nullptr, out),
             "dequantize_rows_cuda_bf16: kernel launch");
}

struct CudaMatmul::Impl {
  cublasHandle_t handle = nullptr;
  DeviceArray<uint8_t> w_tile;   // decoded W rows: f32 or bf16
  DeviceArray<uint16_t> x_bf16;  // x rounded to bf16 (BF16 precision only)

  template <typename T>
  static void reserve(DeviceArray<T>& a, size_t n) {
    if (a.size() < n) a = DeviceArray<T>(n);
  }
};

CudaMatmul::CudaMatmul(CudaMatmulOptions options) : options_(options), impl_(std::make_unique<Impl>()) {
  check_cublas(cuda::cublas().create(&impl_->handle), "CudaMatmul: cublasCreate");
  // F32 precision is the comparison path: forbid TF32 and other reduced-precision shortcuts.
  check_cublas(cuda::cublas().set_math_mode(impl_->handle, options_.precision == GemmPrecision::F32 ? CUBLAS_PEDANTIC_MATH
                                                                                           : CUBLAS_DEFAULT_MATH),
               "CudaMatmul: cublasSetMathMode");
}

CudaMatmul::~CudaMatmul() {
  if (impl_ && impl_->handle) cuda::cublas().destroy(impl_->handle);
}

int64_t CudaMatmul::tile_rows(int64_t k) const {
  const size_t elem = options_.precision == GemmPrecision::BF16 ? 2 : 4;
  return std::max<int64_t>(1, int64_t(options_.tile_bytes / (size_t(std::max<int64_t>(k, 1)) * elem)));
}

void CudaMatmul::matmul(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy) {
  check_weight(w, "CudaMatmul::matmul");
  const int64_t n = w.rows(), k = w.cols();
  ZEROTH_CHECK(m >= 0 && ldx >= k && ldy >= n, "CudaMatmul::matmul: x ({}, {}) with ldx {} and y with ldy {} do not fit {}",
               m, k, ldx, ldy, w.describe());
  ZEROTH_CHECK(m < INT_MAX && n < INT_MAX && k < INT_MAX && ldx < INT_MAX && ldy < INT_MAX,
               "CudaMatmul::matmul: dimensions past 2^31 ({} x {} x {})", m, n, k);
  if (m == 0 || n == 0) return;
  const bool f32 = options_.precision != GemmPrecision::BF16;  // f32 inputs (F32, TF32)
  const float alpha = 1.0f, beta = 0.0f;
  const cudaDataType_t ab_type = f32 ? CUDA_R_32F : CUDA_R_16BF;
  const cublasComputeType_t compute = options_.precision == GemmPrecision::F32    ? CUBLAS_COMPUTE_32F_PEDANTIC
                                      : options_.precision == GemmPrecision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                                  : CUBLAS_COMPUTE_32F;

  const void* xb = x;
  int64_t ldb = ldx;
  if (!f32) {
    Impl::reserve(impl_->x_bf16, size_t(m * k));
    check_cuda(cuda::launch_f32_to_bf16(x, m, k, ldx, impl_->x_bf16.data()), "CudaMatmul::matmul: x to bf16");
    xb = impl_->x_bf16.data();
    ldb = k;
  }
  // A weight already in the GEMM's input type is used in place; others are decoded per tile.
  const bool in_place = (f32 && w.dtype() == DType::F32) || (!f32 && w.dtype() == DType::BF16);
  const int64_t tile = in_place ? n : std::min(n, tile_rows(k));
  if (!in_place) Impl::reserve(impl_->w_tile, size_t(tile * k) * (f32 ? 4 : 2));
  for (int64_t r0 = 0; r0 < n; r0 += tile) {
    const int64_t nt = std::min(tile, n - r0);
    const void* a = row_ptr(w, r0);
    if (!in_place) {
      uint8_t* s = impl_->w_tile.data();
      check_cuda(cuda::launch_dequantize(w.dtype(), row_ptr(w, r0), w.row_bytes(), k, nt,
                                         f32 ? reinterpret_cast<float*>(s) : nullptr,
                                         f32 ? nullptr : reinterpret_cast<uint16_t*>(s)),
                 "CudaMatmul::matmul: decode tile");
      a = s;
    }
    check_cublas(cuda::cublas().gemm_ex(impl_->handle, CUBLAS_OP_T, CUBLAS_OP_N, int(nt), int(m), int(k), &alpha, a, ab_type,
                              int(k), xb, ab_type, int(ldb), &beta, y + r0, CUDA_R_32F, int(ldy), compute,
                              CUBLAS_GEMM_DEFAULT),
                 "CudaMatmul::matmul: cublasGemmEx");
  }
}

void CudaMatmul::gemm_f32(const float* a, int64_t m, int64_t k, int64_t lda, const float* b, int64_t n, int64_t ldb,
                          float* c, int64_t ldc, float alpha, float beta) {
  ZEROTH_CHECK(m >= 0 && n >= 0 && k >= 0 && lda >= k && ldb >= k && ldc >= n,
               "CudaMatmul::gemm_f32: ({}, {}) x ({}, {})ᵀ with strides {}, {}, {} do not fit", m, k, n, k, lda, ldb, ldc);
  ZEROTH_CHECK(m < INT_MAX && n < INT_MAX && k < INT_MAX && lda < INT_MAX && ldb < INT_MAX && ldc < INT_MAX,
               "CudaMatmul::gemm_f32: dimensions past 2^31 ({} x {} x {})", m, n, k);
  if (m == 0 || n == 0) return;
  // k = 0: c = beta·c. cuBLAS returns early for k = 0 without touching c (seen
  // on an H100, CUDA 13), so the scaling is done here.
  if (k == 0) {
    check_cuda(cuda::launch_scale_rows(c, m, n, ldc, beta), "CudaMatmul::gemm_f32 (k = 0)");
    return;
  }
  // Column-major: cᵀ (n, m) = op_T(b as (k, n)) · a as (k, m), as in matmul.
  const cublasComputeType_t compute =
      options_.precision == GemmPrecision::F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
  check_cublas(cuda::cublas().gemm_ex(impl_->handle, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k),
                            &alpha, b, CUDA_R_32F, int(ldb), a, CUDA_R_32F,
                            int(lda), &beta, c, CUDA_R_32F, int(ldc), compute,
                            CUBLAS_GEMM_DEFAULT),
               "CudaMatmul::gemm_f32: cublasGemmEx");
}

}  // namespace zeroth
