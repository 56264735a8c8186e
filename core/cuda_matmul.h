// Matrix products against frozen weights on CUDA: y = x · Wᵀ with W packed in
// device memory in its own block format (core/cuda/dequant.cu decodes it a tile
// of rows at a time, core/cuda/gemm.cpp multiplies each tile with cuBLAS). In a
// build without CUDA every function throws "built without CUDA".
//
//   x: (m, k) f32, row stride ldx          device memory
//   W: (n, k) tensor on Device::CUDA, contiguous rows, any dtype cuda_can_dequantize takes
//   y: (m, n) f32, row stride ldy          device memory
//
// A tile is at most CudaMatmulOptions::tile_bytes of decoded rows, the only
// scratch W ever gets (the architecture's rule: never a full f32 copy of a weight).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/tensor.h"

namespace zeroth {

// Formats with a CUDA decoder: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k,
// q6_k, i8_b32/64/128, i4_b32, i4m_b32, nf4, and the 40 of the NF family
// (core/quant/nfk.h: nf2..nf8, blocks 16..256, q8 or f16 scales).
bool cuda_can_dequantize(DType t);

// Rows [r0, r0+rows) of w (device, contiguous (n, k)) decoded into out (rows, k)
// on the device: f32 bit-identical to dequantize_row on the CPU, or those f32
// values rounded to bf16 (nearest even) as raw uint16 bits.
void dequantize_rows_cuda(const Tensor& w, int64_t r0, int64_t rows, float* out);
void dequantize_rows_cuda_bf16(const Tensor& w, int64_t r0, int64_t rows, uint16_t* out);

enum class GemmPrecision : uint8_t {
  F32,   // W decoded to f32; cuBLAS f32 GEMM without TF32 (CUBLAS_COMPUTE_32F_PEDANTIC): the comparison path
  TF32,  // W decoded to f32; tensor-core GEMM on TF32 inputs (10-bit mantissa, as fp16) accumulating in f32
  BF16,  // W decoded to bf16, x rounded to bf16; tensor-core GEMM accumulating in f32
};
const char* gemm_precision_name(GemmPrecision p);  // "f32", "tf32", "bf16"
// Throws, naming `key` and the choices, for anything else.
GemmPrecision parse_gemm_precision(const std::string& s, const char* key);

struct CudaMatmulOptions {
  GemmPrecision precision = GemmPrecision::BF16;
  size_t tile_bytes = size_t(64) << 20;  // decoded W rows per tile (at least one row)
};

// Owns a cuBLAS handle and the decode scratch: one per device and host thread.
// Calls run on the default stream and return after the launches.
class CudaMatmul {
 public:
  explicit CudaMatmul(CudaMatmulOptions options = {});
  ~CudaMatmul();
  CudaMatmul(const CudaMatmul&) = delete;
  CudaMatmul& operator=(const CudaMatmul&) = delete;

  void matmul(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy);
  // Plain f32 product on device memory, row-major: c (m, n) = alpha · a (m, k) ·
  // b (n, k)ᵀ + beta · c, with row strides lda, ldb, ldc (the low-rank adapter
  // products). F32 precision: no TF32, as matmul; BF16 precision: cuBLAS's
  // default f32 math.
  void gemm_f32(const float* a, int64_t m, int64_t k, int64_t lda, const float* b, int64_t n, int64_t ldb, float* c,
                int64_t ldc, float alpha, float beta);
  // W rows per decoded tile for a weight with k columns.
  int64_t tile_rows(int64_t k) const;
  const CudaMatmulOptions& options() const { return options_; }

 private:
  struct Impl;
  CudaMatmulOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroth
