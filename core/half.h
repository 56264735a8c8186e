// IEEE binary16 and bfloat16 <-> float conversions, exact and branch-light,
// usable on host and device. Rounding to half/bf16 is round-to-nearest-even.
#pragma once
#include <cstdint>
#include <cstring>
#include "core/hostdevice.h"

namespace zeroth {

ZEROTH_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u; std::memcpy(&u, &f, 4); return u;
#endif
}
ZEROTH_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f; std::memcpy(&f, &u, 4); return f;
#endif
}

ZEROTH_HD float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

ZEROTH_HD uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                         // RNE
  return uint16_t(u >> 16);
}

ZEROTH_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));  // inf/nan
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);
    // subnormal: value = man * 2^-24, exact in float
    float v = float(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

ZEROTH_HD uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return uint16_t(sign | 0x7e00u);          // NaN
  if (u >= 0x477ff000u) return uint16_t(sign | 0x7c00u);         // overflow (>= 65520) -> inf
  if (u < 0x38800000u) {                                         // result subnormal or zero
    if (u < 0x33000000u) return sign;                            // < 2^-25 rounds to 0
    const uint32_t e = u >> 23;
    const uint32_t m = (u & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;                             // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = u + 0xfffu + ((u >> 13) & 1u) - 0x38000000u;      // rebias and RNE
  return uint16_t(sign | (r >> 13));
}

}  // namespace zeroth
