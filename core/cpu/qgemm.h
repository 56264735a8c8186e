// Matrix products with int8-quantized activations, for generation (m = 1…8).
//
// matmul (core/matmul.h) is the default everywhere: f32 activations, one FMA
// chain per output, results independent of threads and batching, within f32
// rounding of matmul_reference. matmul_int8 trades accuracy for speed where
// decoding the weights dominates (a single token): each x row is quantized per
// 32 elements to int8 with an absmax scale (d = absmax / 127, q = round(x / d)),
// and blocks of the integer weight formats are multiplied by AVX2 integer dot
// products (maddubs/madd), scaled by the two block scales.
//
// Accuracy: rounding x to 255 levels per block (error up to d/2, about 0.4 % of
// a Gaussian block's absmax) gives max |y − y_ref| of 3e-3 … 1e-2 of max |y| on
// N(0,1) activations (tests bound it at 2e-2; the float path is within 1e-5). Do not use it for the
// ZO loss differences L(θ+εz) − L(θ−εz): activation rounding is not smooth in
// θ and its noise can swamp the ε signal. Results still do not depend on the
// thread count or on the other rows of the batch. Non-finite activations in a
// block give NaN outputs.
//
// Integer path for Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, I8_B32/B64/B128, I4_B32,
// I4M_B32; other dtypes (plain floats, NF4) run matmul itself. (NF4's levels
// are not integers: an int8 codebook would add ~1 % weight error on top.)
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace zeroth {

bool matmul_int8_supported(DType t);
void matmul_int8(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy,
                 int threads = 0);

}  // namespace zeroth
