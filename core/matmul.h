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

namespace zeroth {

// The input gradient of y = x · Wᵀ:  dx (m, k) = dy (m, n) · W  (dx += … when
// `accumulate`). W is read as matmul reads it: packed rows decoded a tile at a
// time (slabs of k columns × 128 rows, cache-resident), never a full f32 copy.
// Each thread owns whole slabs of dx columns and sums over W rows in a fixed
// order, so results do not depend on the thread count. matmul_dx_reference
// accumulates in double: the oracle for the fast path.
void matmul_dx(const float* dy, int64_t m, int64_t lddy, const Tensor& w, float* dx, int64_t lddx, bool accumulate,
               int threads = 0);
void matmul_dx_reference(const float* dy, int64_t m, int64_t lddy, const Tensor& w, float* dx, int64_t lddx,
                         bool accumulate);

}  // namespace zeroth
