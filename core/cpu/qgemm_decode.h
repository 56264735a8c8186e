// Fast decoders of row segments for the matrix product: the same floats as the
// scalar codecs in core/quant (bit for bit: same operations in the same order,
// no FMA), produced 8 lanes at a time with AVX2.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace zeroth {

// Elements [k0, k0+len) of a row of k elements of dtype t -> out[0, len).
// k0 and len must be multiples of the block size (checked by the caller).
void decode_row_segment_fast(DType t, const uint8_t* row, int64_t k, int64_t k0, int64_t len,
                             float* out);

}  // namespace zeroth
