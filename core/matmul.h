// Matrix products against frozen weights in any dtype: y = x · Wᵀ.
//
//   x: (m, k) f32, row stride ldx          activations, one row per token/variant
//   W: (n, k) tensor, any plain float or quantized dtype, contiguous rows
//   y: (m, n) f32, row stride ldy
//
// Packed weights are read directly: tiles of W rows are decoded into a small
// cache-resident buffer (or multiplied by integer dot products), never into a
// full f32 copy of W. matmul_reference is the scalar oracle for the fast path.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace zeroth {

void matmul(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy,
            int threads = 0);
void matmul_reference(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy);

}  // namespace zeroth
