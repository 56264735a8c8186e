// Standard normal draws built only from IEEE-754 correctly rounded operations
// (+, -, *, /, sqrt in float, round-to-nearest) and integer/bit manipulation, so
// the same bits come out on every CPU and on CUDA. libm's logf/sinf/cosf differ
// between glibc versions and CUDA's libdevice, so they are not used.
//
// Method: Box-Muller on two 32-bit words (a, b) -> two normals
//   u1 = ((a >> 8) + 1) * 2^-24          in (0, 1], exact (24-bit grid)
//   r  = sqrt(-2 ln u1)                  ln by exponent split + atanh series
//   angle = 2*pi * (b as a 32-bit fraction): quadrant from b's top 2 bits,
//   the angle inside the quadrant from the next 23 bits (odd multiples of
//   2^-24 of a quarter turn), folded to [0, pi/4] and fed to Taylor polynomials.
//   z0 = r cos(angle), z1 = r sin(angle)
// Every expression is evaluated in the fixed order written below (the build has
// -ffp-contract=off; on the device the __f*_rn intrinsics forbid contraction).
//
// Accuracy against Box-Muller in double with libm on the same u1 and angle: the
// series truncation errors are < 3e-9 (ln) and < 2e-9 (sin/cos), the rest is
// float rounding; measured over 4M draws: |error| <= 5.3e-7 absolute, <= 3.7 ulp
// of the result (tests/core/perturb_test.cpp bounds it). Limits of the input grid: u1 >= 2^-24
// caps |z| at sqrt(2*24*ln 2) = 5.77 (the normal puts 8e-9 of its mass beyond);
// the angle takes 2^25 values. tests/core/perturb_test.cpp checks moments and a
// Kolmogorov-Smirnov distance against N(0,1).
#pragma once
#include <cstdint>

#include "core/hostdevice.h"

#if !defined(__CUDA_ARCH__)
#include <bit>
#include <cmath>
#endif

namespace zeroth::exact {

// Correctly rounded float operations that no compiler may fuse or reorder.
ZEROTH_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
ZEROTH_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
ZEROTH_HD float sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
ZEROTH_HD float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
ZEROTH_HD float sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);  // sqrtss: correctly rounded
#endif
}
ZEROTH_HD uint32_t bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  return std::bit_cast<uint32_t>(f);
#endif
}
ZEROTH_HD float from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  return std::bit_cast<float>(u);
#endif
}

// Constants shared with the AVX2 copy in core/cpu/perturb_avx2.cpp; changing one
// changes every Gaussian stream ever recorded in a ledger.
inline constexpr float kLn2Hi = 0.693145751953125f;  // 0x3f317200: ln 2 with its low bits cleared
inline constexpr float kLn2Lo = 1.428606765330187e-06f;  // ln 2 - kLn2Hi
inline constexpr float kSqrt2 = 1.41421356f;
inline constexpr float kHalfPi = 1.57079632679489662f;
inline constexpr float kTwoPow24Inv = 5.9604644775390625e-08f;  // 2^-24
// ln m = 2 atanh(s), s = (m-1)/(m+1): 2 (s + s^3/3 + ... + s^9/9); |s| <= 0.1716
inline constexpr float kL1 = 1.0f / 3, kL2 = 1.0f / 5, kL3 = 1.0f / 7, kL4 = 1.0f / 9;
// Taylor coefficients of sin (to x^9) and cos (to x^10) on [0, pi/4].
inline constexpr float kS1 = -1.0f / 6, kS2 = 1.0f / 120, kS3 = -1.0f / 5040, kS4 = 1.0f / 362880;
inline constexpr float kC1 = -1.0f / 2, kC2 = 1.0f / 24, kC3 = -1.0f / 720, kC4 = 1.0f / 40320,
                       kC5 = -1.0f / 3628800;

// ln(u) for u in [2^-24, 1] (a normal float, not 0): exponent e and mantissa m in
// [sqrt(1/2), sqrt(2)), ln u = e ln 2 + ln m.
ZEROTH_HD float ln(float u) {
  const uint32_t ub = bits(u);
  int32_t e = int32_t(ub >> 23) - 127;
  float m = from_bits((ub & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  const bool big = m > kSqrt2;
  m = big ? mul(m, 0.5f) : m;  // exact
  e += big ? 1 : 0;
  const float s = div(sub(m, 1.0f), add(m, 1.0f));  // m - 1 is exact (Sterbenz)
  const float s2 = mul(s, s);
  float p = kL4;
  p = add(mul(p, s2), kL3);
  p = add(mul(p, s2), kL2);
  p = add(mul(p, s2), kL1);
  const float ln_m = mul(add(s, mul(mul(s, s2), p)), 2.0f);
  const float ef = float(e);  // |e| <= 24: exact, and e * kLn2Hi is exact too
  return add(mul(ef, kLn2Hi), add(mul(ef, kLn2Lo), ln_m));
}

// sin and cos of x in [0, pi/4].
ZEROTH_HD void sincos_octant(float x, float* s, float* c) {
  const float x2 = mul(x, x);
  float ps = kS4;
  ps = add(mul(ps, x2), kS3);
  ps = add(mul(ps, x2), kS2);
  ps = add(mul(ps, x2), kS1);
  *s = add(x, mul(mul(x, x2), ps));
  float pc = kC5;
  pc = add(mul(pc, x2), kC4);
  pc = add(mul(pc, x2), kC3);
  pc = add(mul(pc, x2), kC2);
  pc = add(mul(pc, x2), kC1);
  *c = add(1.0f, mul(x2, pc));
}

// Two independent N(0,1) draws from two uniform 32-bit words.
ZEROTH_HD void normal_pair(uint32_t a, uint32_t b, float* z0, float* z1) {
  const float u1 = mul(float((a >> 8) + 1u), kTwoPow24Inv);  // (0, 1], exact
  const float r = sqrt(mul(-2.0f, ln(u1)));
  const uint32_t quadrant = b >> 30;
  // x = (2t + 1) 2^-24, t < 2^23: a fraction of the quarter turn in (0, 1), exact.
  const float x = mul(float((((b >> 7) & 0x007FFFFFu) << 1) | 1u), kTwoPow24Inv);
  const bool upper = x > 0.5f;
  const float folded = upper ? sub(1.0f, x) : x;  // exact (Sterbenz)
  float s, c;
  sincos_octant(mul(folded, kHalfPi), &s, &c);
  // sin/cos of the angle inside the quadrant (swap when folded), then rotate by
  // quadrant * 90 degrees: (c, s) -> (-s, c) -> (-c, -s) -> (s, -c).
  const bool swap = upper != ((quadrant & 1u) != 0);
  const float cq = swap ? s : c, sq = swap ? c : s;
  const uint32_t neg_c = ((quadrant ^ (quadrant >> 1)) & 1u) << 31;
  const uint32_t neg_s = (quadrant >> 1) << 31;
  *z0 = mul(r, from_bits(bits(cq) ^ neg_c));
  *z1 = mul(r, from_bits(bits(sq) ^ neg_s));
}

}  // namespace zeroth::exact
