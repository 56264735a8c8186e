// AVX2 block decoders (see qgemm_decode.h). Each mirrors one scalar codec in
// core/quant: where the scalar code computes d * float(q) + m, so does the SIMD
// code (separate mul and add, never a fused FMA), so both give the same bits.
// Without AVX2 every dtype falls back to the scalar codecs.
#include "core/cpu/qgemm_decode.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/half.h"
#include "core/quant/blocks.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#define ZEROTH_QGEMM_AVX2 1
#endif

namespace zeroth {

#if ZEROTH_QGEMM_AVX2
namespace {

// 16 bytes -> two vectors of 8 floats (unsigned or signed bytes).
inline void u8x16_to_ps(__m128i v, __m256& lo, __m256& hi) {
  lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
  hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
}
inline void i8x16_to_ps(__m128i v, __m256& lo, __m256& hi) {
  lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
  hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
}
inline __m128i low_nibbles(__m128i v) { return _mm_and_si128(v, _mm_set1_epi8(0x0F)); }
inline __m128i high_nibbles(__m128i v) { return _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F)); }
// f16 block constant via F16C: the same float as f16_to_f32 for every finite or
// infinite value (NaN constants come out quieted; their outputs are NaN either way).
inline float half_at(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }
inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// out[0,16) = d * float(q) + m for 16 unsigned codes (m = nullptr: no offset).
inline void scale_u8(__m128i q, __m256 d, float* out) {
  __m256 a, b; u8x16_to_ps(q, a, b);
  _mm256_storeu_ps(out, _mm256_mul_ps(d, a));
  _mm256_storeu_ps(out + 8, _mm256_mul_ps(d, b));
}
inline void scale_i8(__m128i q, __m256 d, float* out) {
  __m256 a, b; i8x16_to_ps(q, a, b);
  _mm256_storeu_ps(out, _mm256_mul_ps(d, a));
  _mm256_storeu_ps(out + 8, _mm256_mul_ps(d, b));
}
inline void scale_add_u8(__m128i q, __m256 d, __m256 m, float* out) {
  __m256 a, b; u8x16_to_ps(q, a, b);
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(d, a), m));
  _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_mul_ps(d, b), m));
}
inline void scale_sub_u8(__m128i q, __m256 d, __m256 m, float* out) {
  __m256 a, b; u8x16_to_ps(q, a, b);
  _mm256_storeu_ps(out, _mm256_sub_ps(_mm256_mul_ps(d, a), m));
  _mm256_storeu_ps(out + 8, _mm256_sub_ps(_mm256_mul_ps(d, b), m));
}

// Nibble-packed 32-element block (byte j: low -> j, high -> j+16), codes - 8.
inline void nibbles_centered(const uint8_t* qs, __m256 d, float* y) {
  const __m128i v = load16(qs), eight = _mm_set1_epi8(8);
  scale_i8(_mm_sub_epi8(low_nibbles(v), eight), d, y);
  scale_i8(_mm_sub_epi8(high_nibbles(v), eight), d, y + 16);
}
inline void nibbles_offset(const uint8_t* qs, __m256 d, __m256 m, float* y) {
  const __m128i v = load16(qs);
  scale_add_u8(low_nibbles(v), d, m, y);
  scale_add_u8(high_nibbles(v), d, m, y + 16);
}

void q8_0(const uint8_t* p, int64_t nb, float* y) {
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockQ8_0), y += 32) {
    const __m256 d = _mm256_set1_ps(half_at(p));
    scale_i8(load16(p + 2), d, y);
    scale_i8(load16(p + 18), d, y + 16);
  }
}
void q4_0(const uint8_t* p, int64_t nb, float* y) {
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockQ4_0), y += 32)
    nibbles_centered(p + 2, _mm256_set1_ps(half_at(p)), y);
}
void q4_1(const uint8_t* p, int64_t nb, float* y) {
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockQ4_1), y += 32)
    nibbles_offset(p + 4, _mm256_set1_ps(half_at(p)),
                   _mm256_set1_ps(half_at(p + 2)), y);
}
// Q5_0: the 32 fifth bits of qh spread to 0x10 per byte (bytes 0-1 of qh for
// x[0..16), bytes 2-3 for x[16..32)), or-ed onto the nibbles, minus 16.
void q5_0(const uint8_t* p, int64_t nb, float* y) {
  const __m128i bits = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  const __m128i pick_lo = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m128i pick_hi = _mm_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m128i x10 = _mm_set1_epi8(0x10), sixteen = _mm_set1_epi8(16);
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockQ5_0), y += 32) {
    uint32_t qh;
    std::memcpy(&qh, p + offsetof(BlockQ5_0, qh), 4);
    const __m128i h = _mm_cvtsi32_si128(int(qh));
    auto fifth = [&](__m128i pick) {
      const __m128i sel = _mm_and_si128(_mm_shuffle_epi8(h, pick), bits);
      return _mm_and_si128(_mm_cmpeq_epi8(sel, bits), x10);
    };
    const __m128i v = load16(p + offsetof(BlockQ5_0, qs));
    const __m256 d = _mm256_set1_ps(half_at(p));
    scale_i8(_mm_sub_epi8(_mm_or_si128(low_nibbles(v), fifth(pick_lo)), sixteen), d, y);
    scale_i8(_mm_sub_epi8(_mm_or_si128(high_nibbles(v), fifth(pick_hi)), sixteen), d, y + 16);
  }
}
void i4(const uint8_t* p, int64_t nb, float* y) {
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockI4), y += 32)
    nibbles_centered(p + 4, _mm256_set1_ps(load_f32(p)), y);
}
void i4m(const uint8_t* p, int64_t nb, float* y) {
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockI4M), y += 32)
    nibbles_offset(p + 8, _mm256_set1_ps(load_f32(p)), _mm256_set1_ps(load_f32(p + 4)), y);
}
template <int B>
void i8(const uint8_t* p, int64_t nb, float* y) {
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockI8<B>), y += B) {
    const __m256 d = _mm256_set1_ps(load_f32(p));
    for (int j = 0; j < B; j += 16) scale_i8(load16(p + 4 + j), d, y + j);
  }
}

void q4_k(const uint8_t* p, int64_t nb, float* y) {
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockQ4K), y += 256) {
    const float d = half_at(p), dmin = half_at(p + 2);
    const uint8_t* scales = p + offsetof(BlockQ4K, scales);
    const uint8_t* qs = p + offsetof(BlockQ4K, qs);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc, mn;
      k_scale_min(2 * c, scales, sc, mn);
      const __m256 d1 = _mm256_set1_ps(d * float(sc)), m1 = _mm256_set1_ps(dmin * float(mn));
      k_scale_min(2 * c + 1, scales, sc, mn);
      const __m256 d2 = _mm256_set1_ps(d * float(sc)), m2 = _mm256_set1_ps(dmin * float(mn));
      for (int h = 0; h < 32; h += 16) {
        const __m128i v = load16(qs + 32 * c + h);
        scale_sub_u8(low_nibbles(v), d1, m1, y + 64 * c + h);
        scale_sub_u8(high_nibbles(v), d2, m2, y + 64 * c + 32 + h);
      }
    }
  }
}

void q5_k(const uint8_t* p, int64_t nb, float* y) {
  const __m128i one = _mm_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockQ5K), y += 256) {
    const float d = half_at(p), dmin = half_at(p + 2);
    const uint8_t* scales = p + offsetof(BlockQ5K, scales);
    const uint8_t* qh = p + offsetof(BlockQ5K, qh);
    const uint8_t* qs = p + offsetof(BlockQ5K, qs);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc, mn;
      k_scale_min(2 * c, scales, sc, mn);
      const __m256 d1 = _mm256_set1_ps(d * float(sc)), m1 = _mm256_set1_ps(dmin * float(mn));
      k_scale_min(2 * c + 1, scales, sc, mn);
      const __m256 d2 = _mm256_set1_ps(d * float(sc)), m2 = _mm256_set1_ps(dmin * float(mn));
      for (int h = 0; h < 32; h += 16) {
        const __m128i v = load16(qs + 32 * c + h), hb = load16(qh + h);
        // bit (2c) / (2c+1) of each qh byte, moved to bit 4; the epi16 shift
        // leaks bits across bytes only above bit 0, which the mask drops.
        const __m128i b_lo = _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(hb, _mm_cvtsi32_si128(2 * c)), one), 4);
        const __m128i b_hi = _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(hb, _mm_cvtsi32_si128(2 * c + 1)), one), 4);
        scale_sub_u8(_mm_or_si128(low_nibbles(v), b_lo), d1, m1, y + 64 * c + h);
        scale_sub_u8(_mm_or_si128(high_nibbles(v), b_hi), d2, m2, y + 64 * c + 32 + h);
      }
    }
  }
}

void q6_k(const uint8_t* p, int64_t nb, float* y) {
  const __m128i three = _mm_set1_epi8(3), bias = _mm_set1_epi8(32);
  for (int64_t b = 0; b < nb; ++b, p += sizeof(BlockQ6K), y += 256) {
    const float d = half_at(p + offsetof(BlockQ6K, d));
    const int8_t* scales = reinterpret_cast<const int8_t*>(p + offsetof(BlockQ6K, scales));
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = p + 64 * half;
      const uint8_t* qh = p + offsetof(BlockQ6K, qh) + 32 * half;
      const int8_t* sc = scales + 8 * half;
      float* yh = y + 128 * half;
      for (int h = 0; h < 2; ++h) {  // l in [16h, 16h+16): scale index is = h
        const __m128i lo = load16(ql + 16 * h), hi = load16(ql + 32 + 16 * h), bits = load16(qh + 16 * h);
        const __m128i top[4] = {
            _mm_slli_epi16(_mm_and_si128(bits, three), 4),
            _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(bits, 2), three), 4),
            _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(bits, 4), three), 4),
            _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(bits, 6), three), 4)};
        const __m128i q[4] = {_mm_or_si128(low_nibbles(lo), top[0]), _mm_or_si128(low_nibbles(hi), top[1]),
                              _mm_or_si128(high_nibbles(lo), top[2]), _mm_or_si128(high_nibbles(hi), top[3])};
        for (int i = 0; i < 4; ++i)
          scale_i8(_mm_sub_epi8(q[i], bias), _mm256_set1_ps(d * float(sc[h + 2 * i])), yh + 32 * i + 16 * h);
      }
    }
  }
}

// Codebook levels of the low 8 codes (bytes) of v: codes 0-7 come from lut_lo,
// 8-15 from lut_hi, chosen by bit 3 moved to the sign bit for blendv.
inline __m256 nf4_levels(__m256 lut_lo, __m256 lut_hi, __m128i v) {
  const __m256i idx = _mm256_cvtepu8_epi32(v);
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lut_lo, idx), _mm256_permutevar8x32_ps(lut_hi, idx),
                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

void nf4(const uint8_t* row, int64_t k, int64_t k0, int64_t len, float* out) {
  const __m256 lut_lo = _mm256_loadu_ps(kNf4Codebook.data());
  const __m256 lut_hi = _mm256_loadu_ps(kNf4Codebook.data() + 8);
  for (int64_t b = k0 / kNf4Block; b < (k0 + len) / kNf4Block; ++b) {
    const __m256 s = _mm256_set1_ps(nf4_block_absmax(row, k, b));
    float* y = out + (b * kNf4Block - k0);
    for (int h = 0; h < 32; h += 16) {
      const __m128i v = load16(row + b * 32 + h);
      const __m128i codes[2] = {low_nibbles(v), high_nibbles(v)};
      for (int part = 0; part < 2; ++part) {  // part 0: elements h.., part 1: 32+h..
        float* yp = y + 32 * part + h;
        _mm256_storeu_ps(yp, _mm256_mul_ps(s, nf4_levels(lut_lo, lut_hi, codes[part])));
        _mm256_storeu_ps(yp + 8, _mm256_mul_ps(s, nf4_levels(lut_lo, lut_hi, _mm_srli_si128(codes[part], 8))));
      }
    }
  }
}

void f16(const uint8_t* p, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(load16(p + 2 * i)));
  for (; i < n; ++i) y[i] = f16_to_f32(load_u16(p + 2 * i));
}
void bf16(const uint8_t* p, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load16(p + 2 * i)), 16)));
  for (; i < n; ++i) y[i] = bf16_to_f32(load_u16(p + 2 * i));
}

}  // namespace
#endif  // ZEROTH_QGEMM_AVX2

void decode_row_segment_fast(DType t, const uint8_t* row, int64_t k, int64_t k0, int64_t len,
                             float* out) {
#if ZEROTH_QGEMM_AVX2
  const auto& info = dtype_info(t);
  const int64_t nb = len / info.block_elems;
  const uint8_t* p = row + k0 / info.block_elems * info.block_bytes;
  switch (t) {
    case DType::F32: std::memcpy(out, p, size_t(len) * 4); return;
    case DType::F16: f16(p, len, out); return;
    case DType::BF16: bf16(p, len, out); return;
    case DType::Q8_0: q8_0(p, nb, out); return;
    case DType::Q4_0: q4_0(p, nb, out); return;
    case DType::Q4_1: q4_1(p, nb, out); return;
    case DType::Q5_0: q5_0(p, nb, out); return;
    case DType::Q4_K: q4_k(p, nb, out); return;
    case DType::Q5_K: q5_k(p, nb, out); return;
    case DType::Q6_K: q6_k(p, nb, out); return;
    case DType::I8_B32: i8<32>(p, nb, out); return;
    case DType::I8_B64: i8<64>(p, nb, out); return;
    case DType::I8_B128: i8<128>(p, nb, out); return;
    case DType::I4_B32: i4(p, nb, out); return;
    case DType::I4M_B32: i4m(p, nb, out); return;
    case DType::NF4: nf4(row, k, k0, len, out); return;
    default: break;
  }
#endif
  decode_row_segment_scalar(t, row, k, k0, len, out);
}

}  // namespace zeroth
