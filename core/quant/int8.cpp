// zeroth's int8 absmax formats I8_B32/64/128: per block of B elements an f32
// scale = absmax / 127 and B int8 codes q = round(x / scale), x ≈ scale * q.
// Error per element ≤ scale / 2 (plus one f32 rounding of the product).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/quant/blocks.h"

namespace zeroth {

template <int B>
void encode_i8(const float* in, int64_t k, uint8_t* out) {
  constexpr size_t kBytes = sizeof(BlockI8<B>);
  for (int64_t b = 0; b < k / B; ++b) {
    const float* x = in + b * B;
    uint8_t* blk = out + b * kBytes;
    float amax = 0.0f;
    for (int j = 0; j < B; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float scale = amax / 127.0f;
    store_f32(blk, scale);
    int8_t* qs = reinterpret_cast<int8_t*>(blk + offsetof(BlockI8<B>, qs));
    for (int j = 0; j < B; ++j) {
      // Divide (not multiply by 1/scale) so q is the nearest level to x exactly.
      const float q = scale > 0.0f ? std::nearbyint(x[j] / scale) : 0.0f;
      qs[j] = int8_t(std::clamp(q, -127.0f, 127.0f));
    }
  }
}

template <int B>
void decode_i8(const uint8_t* blocks, int64_t nblocks, float* out) {
  constexpr size_t kBytes = sizeof(BlockI8<B>);
  for (int64_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * kBytes;
    const float scale = load_f32(blk);
    const int8_t* qs = reinterpret_cast<const int8_t*>(blk + offsetof(BlockI8<B>, qs));
    for (int j = 0; j < B; ++j) out[b * B + j] = scale * float(qs[j]);
  }
}

template void encode_i8<32>(const float*, int64_t, uint8_t*);
template void encode_i8<64>(const float*, int64_t, uint8_t*);
template void encode_i8<128>(const float*, int64_t, uint8_t*);
template void decode_i8<32>(const uint8_t*, int64_t, float*);
template void decode_i8<64>(const uint8_t*, int64_t, float*);
template void decode_i8<128>(const uint8_t*, int64_t, float*);

}  // namespace zeroth
