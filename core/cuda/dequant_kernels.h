// Launchers of the block-format decoders (core/cuda/dequant.cu), called by
// core/cuda/gemm.cpp. All pointers are device memory; no fmt here (nvcc).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace zeroth::cuda {

bool dequant_supported(DType t);
// rows rows of k elements, row_bytes apart from `rows_ptr`, decoded into out
// (rows, k): f32 when out_f32 is set, else bf16 bits into out_bf16.
cudaError_t launch_dequantize(DType t, const uint8_t* rows_ptr, size_t row_bytes, int64_t k, int64_t rows,
                              float* out_f32, uint16_t* out_bf16);
// out (m, k) bf16 bits = x (m, k; rows ldx apart) rounded to nearest even.
cudaError_t launch_f32_to_bf16(const float* x, int64_t m, int64_t k, int64_t ldx, uint16_t* out);

}  // namespace zeroth::cuda
