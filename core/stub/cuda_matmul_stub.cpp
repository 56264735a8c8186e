// The CUDA matrix products of a build without CUDA (core/cuda_matmul.h): each says so.
#include <cstdint>

#include "core/cuda_matmul.h"

#include "core/error.h"

namespace zeroth {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  fail("{}: zeroth was built without CUDA (reconfigure with nvcc installed, -DZEROTH_CUDA=ON)", what);
}
}  // namespace

bool cuda_can_dequantize(DType) { return false; }
void dequantize_rows_cuda(const Tensor&, int64_t, int64_t, float*) { no_cuda("dequantize_rows_cuda"); }
void dequantize_rows_cuda_bf16(const Tensor&, int64_t, int64_t, uint16_t*) { no_cuda("dequantize_rows_cuda_bf16"); }

struct CudaMatmul::Impl {};
CudaMatmul::CudaMatmul(CudaMatmulOptions options) : options_(options) { no_cuda("CudaMatmul"); }
CudaMatmul::~CudaMatmul() = default;
int64_t CudaMatmul::tile_rows(int64_t) const { no_cuda("CudaMatmul::tile_rows"); }
void CudaMatmul::gemm_f32(const float*, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, float*, int64_t,
                          float, float) {
  no_cuda("CudaMatmul::gemm_f32");
}
void CudaMatmul::matmul(const float*, int64_t, int64_t, const Tensor&, float*, int64_t) { no_cuda("CudaMatmul::matmul"); }

}  // namespace zeroth
