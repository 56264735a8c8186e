// Integer dot products against int8-quantized activations (see qgemm.h).
//
// Per 32-element block b of a row: x ≈ dx_b · qx (qx int8 in [-127, 127]) and
// w = dw_b · qw (+ mw_b for the offset formats). The block's contribution is
//   dw_b·dx_b · Σ qw·qx  (+ mw_b·dx_b · Σ qx),
// with Σ qw·qx exact in int32 (maddubs pairs stay ≤ 2·127·127 < 2^15). Each
// output keeps 8 float lanes (the 8 int32 partial sums of a block, scaled and
// FMA-added block after block) and one fixed horizontal sum at the end, so a
// result depends only on its own x row and W row.
#include "core/cpu/qgemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/matmul.h"
#include "core/parallel.h"
#include "core/quant/blocks.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define ZEROTH_QGEMM_INT8 1
#endif

namespace zeroth {

bool matmul_int8_supported(DType t) {
#if ZEROTH_QGEMM_INT8
  switch (t) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q4_K: case DType::Q5_K:
    case DType::Q6_K: case DType::I8_B32: case DType::I8_B64: case DType::I8_B128: case DType::I4_B32:
    case DType::I4M_B32: return true;
    default: return false;
  }
#else
  (void)t;
  return false;
#endif
}

#if ZEROTH_QGEMM_INT8
namespace {

constexpr int64_t kB = 32;     // activation block
constexpr int kRows = 4;       // x rows per tile
constexpr int64_t kCols = 2;   // W rows per tile
constexpr int64_t kGrain = 16; // W rows per parallel chunk

// One x row quantized: qs[k] int8, d[k/32] scales, s[k/32] = Σ qs of the block.
struct QRow { const int8_t* qs; const float* d; const float* s; };

void quantize_row(const float* x, int64_t k, int8_t* qs, float* d, float* s) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < k / kB; ++b) {
    const float* xb = x + b * kB;
    __m256 v[4], mx = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[j]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    for (int j = 0; j < 32; ++j)  // max_ps drops NaN: look for non-finite values directly
      if (!std::isfinite(xb[j])) amax = std::nanf("");
    if (!(amax > 0.0f) || !std::isfinite(amax)) {  // all zero, or non-finite: q = 0, d = 0 or NaN
      std::memset(qs + b * kB, 0, kB);
      d[b] = amax == 0.0f ? 0.0f : std::nanf("");
      s[b] = 0.0f;
      continue;
    }
    const __m256 inv = _mm256_set1_ps(127.0f / amax);
    __m256i q[4];
    for (int j = 0; j < 4; ++j)
      q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // int32 -> int8 keeping element order (packs interleave 128-bit lanes; undo with a permute).
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b),
                                                   _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + b * kB), p8);
    d[b] = amax / 127.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += qs[b * kB + j];
    s[b] = float(sum);
  }
}

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
// 16 nibble-packed bytes -> 32 codes 0..15 in element order (low nibbles are 0..15, high 16..31).
inline __m256i nibbles32(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
  return _mm256_set_m128i(hi, lo);
}
// 8 int32 partial sums of u·s for 32 unsigned (≤ 127 or ≤ 15) × 32 signed bytes.
inline __m256i dot_us(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// The same for two signed vectors: |a| · (b with a's sign).
inline __m256i dot_ss(__m256i a, __m256i b) { return dot_us(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One weight block of 32 as integer codes: w = d · q (+ m), d per int32 lane
// of the block dot (lanes 0-3 are elements 0-15, lanes 4-7 elements 16-31;
// only Q6_K has two scales per 32). q is signed, or unsigned for kOffset types.
struct WBlock { __m256i q; __m256 d; float m; };

// Block b (of 32 elements) of a W row in format T.
template <DType T>
inline WBlock wblock(const uint8_t* row, int64_t b) {
  if constexpr (T == DType::Q8_0) {
    const uint8_t* p = row + b * int64_t(sizeof(BlockQ8_0));
    return {load32(p + 2), _mm256_set1_ps(_cvtsh_ss(load_u16(p))), 0.0f};
  } else if constexpr (T == DType::Q4_0) {
    const uint8_t* p = row + b * int64_t(sizeof(BlockQ4_0));
    return {_mm256_sub_epi8(nibbles32(p + 2), _mm256_set1_epi8(8)), _mm256_set1_ps(_cvtsh_ss(load_u16(p))), 0.0f};
  } else if constexpr (T == DType::Q4_1) {
    const uint8_t* p = row + b * int64_t(sizeof(BlockQ4_1));
    return {nibbles32(p + 4), _mm256_set1_ps(_cvtsh_ss(load_u16(p))), _cvtsh_ss(load_u16(p + 2))};
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    // sub-block j of super-block: chunk j/2's 32 bytes, low nibbles for even j,
    // high for odd; Q5_K's fifth bit is bit j of qh[l]. w = (d·sc)·q − dmin·mn.
    constexpr int64_t SB = T == DType::Q4_K ? int64_t(sizeof(BlockQ4K)) : int64_t(sizeof(BlockQ5K));
    const uint8_t* p = row + (b / 8) * SB;
    const int j = int(b % 8);
    const uint8_t* qs = p + (T == DType::Q4_K ? offsetof(BlockQ4K, qs) : offsetof(BlockQ5K, qs)) + 32 * (j / 2);
    const __m256i v = load32(qs);
    __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
    if constexpr (T == DType::Q5_K) {
      // epi16 shift: bits from the neighbouring byte land above bit 0, which the mask drops
      const __m256i hb = _mm256_srl_epi16(load32(p + offsetof(BlockQ5K, qh)), _mm_cvtsi32_si128(j));
      q = _mm256_or_si256(q, _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(1)), 4));
    }
    uint8_t sc, mn;
    k_scale_min(j, p + 4, sc, mn);  // scales follow d and dmin in both layouts
    return {q, _mm256_set1_ps(_cvtsh_ss(load_u16(p)) * float(sc)), -(_cvtsh_ss(load_u16(p + 2)) * float(mn))};
  } else if constexpr (T == DType::Q6_K) {
    // 32-chunk i of half h: x[l+32i] from ql[64h + l + 32(i&1)] (nibble i>>1) and
    // qh[32h + l] >> 2i; scales sc[8h + 2i] (l < 16) and sc[8h + 2i + 1] (l >= 16).
    const uint8_t* p = row + (b / 8) * int64_t(sizeof(BlockQ6K));
    const int h = int(b % 8) / 4, i = int(b % 8) % 4;
    const __m256i lo = load32(p + 64 * h + 32 * (i & 1));
    const __m256i q4 = _mm256_and_si256(i >> 1 ? _mm256_srli_epi16(lo, 4) : lo, _mm256_set1_epi8(0x0F));
    const __m256i hb = _mm256_srl_epi16(load32(p + offsetof(BlockQ6K, qh) + 32 * h), _mm_cvtsi32_si128(2 * i));
    const __m256i q6 = _mm256_or_si256(q4, _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(3)), 4));
    const auto* sc = reinterpret_cast<const int8_t*>(p + offsetof(BlockQ6K, scales)) + 8 * h + 2 * i;
    const float d = _cvtsh_ss(load_u16(p + offsetof(BlockQ6K, d)));
    const __m128 d0 = _mm_set1_ps(d * float(sc[0])), d1 = _mm_set1_ps(d * float(sc[1]));
    return {_mm256_sub_epi8(q6, _mm256_set1_epi8(32)), _mm256_set_m128(d1, d0), 0.0f};
  } else if constexpr (T == DType::I4_B32) {
    const uint8_t* p = row + b * int64_t(sizeof(BlockI4));
    return {_mm256_sub_epi8(nibbles32(p + 4), _mm256_set1_epi8(8)), _mm256_set1_ps(load_f32(p)), 0.0f};
  } else if constexpr (T == DType::I4M_B32) {
    const uint8_t* p = row + b * int64_t(sizeof(BlockI4M));
    return {nibbles32(p + 8), _mm256_set1_ps(load_f32(p)), load_f32(p + 4)};
  } else {  // I8_B32/64/128: 32-element slice b of a block of B
    constexpr int64_t B = T == DType::I8_B32 ? 32 : (T == DType::I8_B64 ? 64 : 128);
    const uint8_t* p = row + (b * 32 / B) * int64_t(sizeof(BlockI8<B>));
    return {load32(p + 4 + (b * 32) % B), _mm256_set1_ps(load_f32(p)), 0.0f};
  }
}
template <DType T>
constexpr bool kOffset = T == DType::Q4_1 || T == DType::I4M_B32 || T == DType::Q4_K || T == DType::Q5_K;

// y[r][c] for MR rows × NC W rows.
template <DType T, int MR, int NC>
void tile(const QRow* xr, const uint8_t* const* wr, int64_t nb, float* y, int64_t ldy) {
  __m256 acc[MR][NC];
  for (int i = 0; i < MR; ++i)
    for (int c = 0; c < NC; ++c) acc[i][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    WBlock wb[NC];
    for (int c = 0; c < NC; ++c) wb[c] = wblock<T>(wr[c], b);
    for (int i = 0; i < MR; ++i) {
      const __m256i qx = load32(reinterpret_cast<const uint8_t*>(xr[i].qs + b * kB));
      const float dx = xr[i].d[b];
      for (int c = 0; c < NC; ++c) {
        const __m256i isum = kOffset<T> ? dot_us(wb[c].q, qx) : dot_ss(wb[c].q, qx);
        __m256 a = acc[i][c];
        if constexpr (kOffset<T>)  // + mw·dx·Σqx, spread as one eighth per lane (×0.125 is exact)
          a = _mm256_add_ps(a, _mm256_set1_ps(wb[c].m * dx * xr[i].s[b] * 0.125f));
        acc[i][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(wb[c].d, _mm256_set1_ps(dx)), a);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int c = 0; c < NC; ++c) y[i * ldy + c] = hsum(acc[i][c]);
}

template <DType T>
void run(const std::vector<QRow>& xr, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k, float* y,
         int64_t ldy, int threads) {
  const int64_t m = int64_t(xr.size()), nb = k / kB;
  parallel_for(n, kGrain, threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j += kCols) {
      const uint8_t* wr[kCols] = {w + size_t(j) * row_bytes, w + size_t(std::min(j + 1, j1 - 1)) * row_bytes};
      const bool two = j + 1 < j1;
      for (int64_t i = 0; i < m; i += kRows) {
        const int mr = int(std::min<int64_t>(kRows, m - i));
        float* yi = y + i * ldy + j;
        const QRow* xi = xr.data() + i;
#define ZEROTH_TILE(R)                                           \
  case R:                                                        \
    if (two) tile<T, R, 2>(xi, wr, nb, yi, ldy);                 \
    else tile<T, R, 1>(xi, wr, nb, yi, ldy);                     \
    break;
        switch (mr) { ZEROTH_TILE(1) ZEROTH_TILE(2) ZEROTH_TILE(3) ZEROTH_TILE(4) default: break; }
#undef ZEROTH_TILE
      }
    }
  });
}

}  // namespace
#endif  // ZEROTH_QGEMM_INT8

void matmul_int8(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy, int threads) {
  if (!w.defined() || w.rank() != 2 || !matmul_int8_supported(w.dtype()) || m == 0 || w.dim(0) == 0 ||
      w.dim(1) == 0) {
    matmul(x, m, ldx, w, y, ldy, threads);  // validates, and handles the empty and float cases
    return;
  }
#if ZEROTH_QGEMM_INT8
  ZEROTH_CHECK(w.device() == Device::CPU && w.is_contiguous(), "matmul_int8: W {} must be a contiguous CPU tensor",
               w.describe());
  const int64_t n = w.dim(0), k = w.dim(1);
  ZEROTH_CHECK(ldx >= k && ldy >= n && x && y,
               "matmul_int8: bad arguments: ldx = {} (needs >= k = {}), ldy = {} (needs >= n = {})", ldx, k, ldy, n);
  // k is a multiple of 32 for every supported dtype (their blocks are 32 … 256).
  std::vector<int8_t> qs(size_t(m * k) + 32);
  std::vector<float> ds(size_t(m * (k / kB))), ss(size_t(m * (k / kB)));
  std::vector<QRow> rows(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    int8_t* q = qs.data() + i * k;
    float* d = ds.data() + i * (k / kB);
    float* s = ss.data() + i * (k / kB);
    quantize_row(x + i * ldx, k, q, d, s);
    rows[size_t(i)] = QRow{q, d, s};
  }
  const auto* wp = static_cast<const uint8_t*>(w.raw());
  const size_t rb = w.row_bytes();
  switch (w.dtype()) {
    case DType::Q8_0: run<DType::Q8_0>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::Q4_0: run<DType::Q4_0>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::Q4_1: run<DType::Q4_1>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::Q4_K: run<DType::Q4_K>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::Q5_K: run<DType::Q5_K>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::Q6_K: run<DType::Q6_K>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::I8_B32: run<DType::I8_B32>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::I8_B64: run<DType::I8_B64>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::I8_B128: run<DType::I8_B128>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::I4_B32: run<DType::I4_B32>(rows, wp, rb, n, k, y, ldy, threads); break;
    case DType::I4M_B32: run<DType::I4M_B32>(rows, wp, rb, n, k, y, ldy, threads); break;
    default: break;
  }
#endif
}

}  // namespace zeroth
