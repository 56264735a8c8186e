// AVX2 Philox, Gaussian and apply inner loops (see core/cpu/rng_simd.h). Eight
// Philox blocks run side by side, one per 32-bit lane; every float operation is
// the vector twin of the scalar one in core/exact_normal.h, in the same order.
#include "core/cpu/rng_simd.h"

#if defined(__AVX2__)
#include <cstdint>
#include <immintrin.h>
#endif

namespace zeroth::cpu {

#if defined(__AVX2__)
namespace {

// Per lane: lo = low and return = high 32 bits of the 64-bit product a * m.
inline __m256i mulhilo(__m256i a, uint32_t m, __m256i* lo) {
  const __m256i mv = _mm256_set1_epi32(int(m));
  const __m256i even = _mm256_mul_epu32(a, mv);                       // lanes 0,2,4,6
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mv);  // lanes 1,3,5,7
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Philox4x32-10 of counters (first + lane, slot, member, step): c[w] = word w per lane.
inline void philox8(const PerturbationKey& key, uint32_t first, __m256i c[4]) {
  c[0] = _mm256_add_epi32(_mm256_set1_epi32(int(first)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  c[1] = _mm256_set1_epi32(int(key.slot));
  c[2] = _mm256_set1_epi32(int(key.member));
  c[3] = _mm256_set1_epi32(int(key.step));
  PhiloxKey k = philox_key(key.run_seed);
  for (int r = 0; r < philox::kRounds; ++r) {
    if (r > 0) {
      k.k[0] += philox::kW0;
      k.k[1] += philox::kW1;
    }
    __m256i lo0, lo1;
    const __m256i hi0 = mulhilo(c[0], philox::kM0, &lo0);
    const __m256i hi1 = mulhilo(c[2], philox::kM1, &lo1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c[1]), _mm256_set1_epi32(int(k.k[0])));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c[3]), _mm256_set1_epi32(int(k.k[1])));
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
  }
}

// Four lane-major vectors (a[j], b[j], c[j], d[j]) -> 32 floats block-major:
// out[4j..4j+3] = a[j], b[j], c[j], d[j].
inline void store_transposed(__m256 a, __m256 b, __m256 c, __m256 d, float* out) {
  const __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
  const __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));  // blocks 0 | 4
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));  // blocks 1 | 5
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));  // blocks 2 | 6
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));  // blocks 3 | 7
  _mm256_storeu_ps(out + 0, _mm256_permute2f128_ps(u0, u1, 0x20));
  _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
  _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
  _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
}

inline __m256 set(float f) { return _mm256_set1_ps(f); }
inline __m256i seti(uint32_t u) { return _mm256_set1_epi32(int(u)); }

// exact::ln, lane by lane.
inline __m256 ln8(__m256 u) {
  const __m256i ub = _mm256_castps_si256(u);
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(ub, 23), seti(127));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(ub, seti(0x007FFFFFu)), seti(0x3F800000u)));
  const __m256 big = _mm256_cmp_ps(m, set(exact::kSqrt2), _CMP_GT_OQ);
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, set(0.5f)), big);
  e = _mm256_sub_epi32(e, _mm256_castps_si256(big));  // the mask is -1 where big
  const __m256 s = _mm256_div_ps(_mm256_sub_ps(m, set(1.0f)), _mm256_add_ps(m, set(1.0f)));
  const __m256 s2 = _mm256_mul_ps(s, s);
  __m256 p = set(exact::kL4);
  p = _mm256_add_ps(_mm256_mul_ps(p, s2), set(exact::kL3));
  p = _mm256_add_ps(_mm256_mul_ps(p, s2), set(exact::kL2));
  p = _mm256_add_ps(_mm256_mul_ps(p, s2), set(exact::kL1));
  const __m256 ln_m = _mm256_mul_ps(_mm256_add_ps(s, _mm256_mul_ps(_mm256_mul_ps(s, s2), p)), set(2.0f));
  const __m256 ef = _mm256_cvtepi32_ps(e);
  return _mm256_add_ps(_mm256_mul_ps(ef, set(exact::kLn2Hi)),
                       _mm256_add_ps(_mm256_mul_ps(ef, set(exact::kLn2Lo)), ln_m));
}

// exact::sincos_octant, lane by lane.
inline void sincos8(__m256 x, __m256* s, __m256* c) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 ps = set(exact::kS4);
  ps = _mm256_add_ps(_mm256_mul_ps(ps, x2), set(exact::kS3));
  ps = _mm256_add_ps(_mm256_mul_ps(ps, x2), set(exact::kS2));
  ps = _mm256_add_ps(_mm256_mul_ps(ps, x2), set(exact::kS1));
  *s = _mm256_add_ps(x, _mm256_mul_ps(_mm256_mul_ps(x, x2), ps));
  __m256 pc = set(exact::kC5);
  pc = _mm256_add_ps(_mm256_mul_ps(pc, x2), set(exact::kC4));
  pc = _mm256_add_ps(_mm256_mul_ps(pc, x2), set(exact::kC3));
  pc = _mm256_add_ps(_mm256_mul_ps(pc, x2), set(exact::kC2));
  pc = _mm256_add_ps(_mm256_mul_ps(pc, x2), set(exact::kC1));
  *c = _mm256_add_ps(set(1.0f), _mm256_mul_ps(x2, pc));
}

// exact::normal_pair, lane by lane.
inline void normal_pair8(__m256i a, __m256i b, __m256* z0, __m256* z1) {
  const __m256 two_m24 = set(exact::kTwoPow24Inv);
  // (a >> 8) + 1 <= 2^24 fits a signed lane, so the signed convert is exact.
  const __m256 u1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(a, 8), seti(1))), two_m24);
  const __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(set(-2.0f), ln8(u1)));
  const __m256i quadrant = _mm256_srli_epi32(b, 30);
  const __m256i t = _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(b, 7), seti(0x007FFFFFu)), 1),
                                    seti(1));
  const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(t), two_m24);
  const __m256 upper = _mm256_cmp_ps(x, set(0.5f), _CMP_GT_OQ);
  const __m256 folded = _mm256_blendv_ps(x, _mm256_sub_ps(set(1.0f), x), upper);
  __m256 s, c;
  sincos8(_mm256_mul_ps(folded, set(exact::kHalfPi)), &s, &c);
  const __m256i q_odd = _mm256_cmpeq_epi32(_mm256_and_si256(quadrant, seti(1)), seti(1));
  const __m256 swap = _mm256_xor_ps(upper, _mm256_castsi256_ps(q_odd));
  const __m256 cq = _mm256_blendv_ps(c, s, swap), sq = _mm256_blendv_ps(s, c, swap);
  const __m256i neg_c = _mm256_slli_epi32(_mm256_and_si256(_mm256_xor_si256(quadrant, _mm256_srli_epi32(quadrant, 1)), seti(1)), 31);
  const __m256i neg_s = _mm256_slli_epi32(_mm256_srli_epi32(quadrant, 1), 31);
  *z0 = _mm256_mul_ps(r, _mm256_xor_ps(cq, _mm256_castsi256_ps(neg_c)));
  *z1 = _mm256_mul_ps(r, _mm256_xor_ps(sq, _mm256_castsi256_ps(neg_s)));
}

// Sign masks (0 or 0x80000000) of bits 8g .. 8g+7 of w, one per lane.
inline __m256i sign_masks(uint32_t w, int g) {
  const __m256i shifts = _mm256_sub_epi32(seti(uint32_t(31 - 8 * g)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return _mm256_and_si256(_mm256_sllv_epi32(seti(w), shifts), seti(0x80000000u));
}

}  // namespace

bool rng_simd_is_avx2() { return true; }

void philox_blocks8(const PerturbationKey& key, uint32_t first, uint32_t words[32]) {
  __m256i c[4];
  philox8(key, first, c);
  store_transposed(_mm256_castsi256_ps(c[0]), _mm256_castsi256_ps(c[1]), _mm256_castsi256_ps(c[2]),
                   _mm256_castsi256_ps(c[3]), reinterpret_cast<float*>(words));
}

void gaussian_blocks8(const PerturbationKey& key, uint32_t first, float z[32]) {
  __m256i c[4];
  philox8(key, first, c);
  __m256 z0, z1, z2, z3;
  normal_pair8(c[0], c[1], &z0, &z1);
  normal_pair8(c[2], c[3], &z2, &z3);
  store_transposed(z0, z1, z2, z3, z);
}

void rademacher_expand(const uint32_t* words, int64_t nwords, float* out) {
  const __m256i one = seti(0x3F800000u);
  for (int64_t w = 0; w < nwords; ++w)
    for (int g = 0; g < 4; ++g)
      _mm256_storeu_ps(out + 32 * w + 8 * g, _mm256_castsi256_ps(_mm256_or_si256(one, sign_masks(words[w], g))));
}

void rademacher_accumulate(const uint32_t* words, int64_t nwords, float c, float* acc) {
  const __m256 cv = set(c);
  for (int64_t w = 0; w < nwords; ++w)
    for (int g = 0; g < 4; ++g) {
      float* a = acc + 32 * w + 8 * g;
      const __m256 term = _mm256_xor_ps(cv, _mm256_castsi256_ps(sign_masks(words[w], g)));
      _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), term));
    }
}

void accumulate_scaled(const float* z, int64_t n, float c, float* acc) {
  const __m256 cv = set(c);
  int64_t t = 0;
  for (; t + 8 <= n; t += 8)
    _mm256_storeu_ps(acc + t, _mm256_add_ps(_mm256_loadu_ps(acc + t), _mm256_mul_ps(cv, _mm256_loadu_ps(z + t))));
  for (; t < n; ++t) acc[t] = acc[t] + c * z[t];
}

void decay_subtract(float* theta, const float* acc, int64_t n, float decay) {
  const __m256 dv = set(decay);
  int64_t t = 0;
  for (; t + 8 <= n; t += 8)
    _mm256_storeu_ps(theta + t, _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(theta + t), dv), _mm256_loadu_ps(acc + t)));
  for (; t < n; ++t) theta[t] = theta[t] * decay - acc[t];
}

#else  // scalar versions of the same operations

bool rng_simd_is_avx2() { return false; }

void philox_blocks8(const PerturbationKey& key, uint32_t first, uint32_t words[32]) {
  for (uint32_t j = 0; j < 8; ++j) {
    const PhiloxBlock b = perturbation_block(key, first + j);
    for (int w = 0; w < 4; ++w) words[4 * j + w] = b.w[w];
  }
}

void gaussian_blocks8(const PerturbationKey& key, uint32_t first, float z[32]) {
  for (uint32_t j = 0; j < 8; ++j) gaussian_quad(perturbation_block(key, first + j), z + 4 * j);
}

void rademacher_expand(const uint32_t* words, int64_t nwords, float* out) {
  for (int64_t t = 0; t < 32 * nwords; ++t)
    out[t] = exact::from_bits(0x3F800000u | (((words[t >> 5] >> (t & 31)) & 1u) << 31));
}

void rademacher_accumulate(const uint32_t* words, int64_t nwords, float c, float* acc) {
  for (int64_t t = 0; t < 32 * nwords; ++t)
    acc[t] = acc[t] + exact::from_bits(exact::bits(c) ^ (((words[t >> 5] >> (t & 31)) & 1u) << 31));
}

void accumulate_scaled(const float* z, int64_t n, float c, float* acc) {
  for (int64_t t = 0; t < n; ++t) acc[t] = acc[t] + c * z[t];
}

void decay_subtract(float* theta, const float* acc, int64_t n, float decay) {
  for (int64_t t = 0; t < n; ++t) theta[t] = theta[t] * decay - acc[t];
}

#endif

}  // namespace zeroth::cpu
