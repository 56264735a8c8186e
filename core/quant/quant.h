// Quantization of weight rows into zeroth's block formats, and decoding of every
// block format (zeroth's and GGUF's) back to f32. See core/dtype.h for the list.
//
// Every function works row by row: a row of k elements (k a multiple of the
// format's block size) is quantized independently of every other row.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace zeroth {

// Decodes one row of k elements stored as `type` (any plain float or block dtype).
void dequantize_row(DType type, const void* row, float* out, int64_t k);
// Encodes one row of k f32 values as `type`. Supported targets: f32, f16, bf16,
// q8_0, q4_0, q4_1, i8_b32/64/128, i4_b32, i4m_b32, nf4 and the NF family of
// core/quant/nfk.h. (The K-quants are decoded only.)
void quantize_row(DType type, const float* in, void* row, int64_t k);
bool can_quantize_to(DType type);

// Whole tensors (rows = all leading dims). quantize() takes any plain float tensor.
Tensor quantize(const Tensor& w, DType to, int threads = 0);
Tensor dequantize(const Tensor& w, int threads = 0);  // -> f32, same shape

}  // namespace zeroth
