// y (m, n) = x (m, k) · Wᵀ for W (n, k) in any float or block dtype.
//
// Fast path: the work is cut into tasks of (12 W rows) × (up to 128 x rows).
// A task walks k in slabs of 256 (a multiple of every block size); per slab it
// decodes its 12 W row segments into a 12 × 256 f32 panel on the stack (12 KiB,
// L1-resident; f32 weights are read in place) and multiplies it against the x
// rows with AVX2 FMA dot-product tiles of 12 accumulators (4 x rows × 3 W rows
// down to 1 × 12 for a single x row). W is
// decoded once per task, never as a whole.
//
// Determinism: every y[i][j] is the same sequence of operations (lane-wise FMA
// over the slab, a fixed horizontal sum, slabs added in k order) whatever the
// tile shape, the task it falls in or the thread count, so results do not
// depend on threads. They differ from matmul_reference (double accumulation)
// by f32 rounding only.
#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "core/cpu/qgemm_decode.h"
#include "core/error.h"
#include "core/matmul.h"
#include "core/parallel.h"
#include "core/quant/quant.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ZEROTH_QGEMM_FMA 1
#endif

namespace zeroth {
namespace {

constexpr int64_t kPanelRows = 12;  // W rows per task (y columns)
constexpr int64_t kSlab = 256;      // k elements per slab: multiple of 1, 32, 64, 128, 256
constexpr int64_t kMBlock = 128;    // x rows per task: 128 × 256 f32 = 128 KiB of x per slab (L2)
constexpr int kMR = 4;              // most x rows per tile
constexpr int kAcc = 12;            // accumulators per tile: x rows × W rows ≤ 12

#if ZEROTH_QGEMM_FMA
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// out[i*NJ + j] = Σ_kk x[i*ldx + kk] · w[j*ldw + kk] over kk < kc.
template <int MR, int NJ>
void dot_tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t kc, float* out) {
  int64_t kk = 0;
#if ZEROTH_QGEMM_FMA
  __m256 acc[MR][NJ];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NJ; ++j) acc[i][j] = _mm256_setzero_ps();
  for (; kk + 8 <= kc; kk += 8) {
    __m256 wv[NJ];
    for (int j = 0; j < NJ; ++j) wv[j] = _mm256_loadu_ps(w + j * ldw + kk);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + kk);
      for (int j = 0; j < NJ; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NJ; ++j) out[i * NJ + j] = hsum(acc[i][j]);
#else
  for (int i = 0; i < MR * NJ; ++i) out[i] = 0.0f;
#endif
  for (; kk < kc; ++kk)  // k tail of plain-float weights (k % 8 != 0)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NJ; ++j) out[i * NJ + j] += x[i * ldx + kk] * w[j * ldw + kk];
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*);

// Tiles keep 12 accumulators: 4×3, 3×4, 2×6 or 1×12 (x rows × W rows), so a
// single x row (m = 1) still has 12 independent FMA chains. kTiles[mr-1][nj-1]
// for nj ≤ 12 / mr.
template <int MR, size_t... NJ>
constexpr std::array<TileFn, kAcc> tiles_for(std::index_sequence<NJ...>) {
  std::array<TileFn, kAcc> t{};
  ((t[NJ] = &dot_tile<MR, int(NJ) + 1>), ...);
  return t;
}
constexpr std::array<std::array<TileFn, kAcc>, kMR> kTiles = {
    tiles_for<1>(std::make_index_sequence<kAcc / 1>()), tiles_for<2>(std::make_index_sequence<kAcc / 2>()),
    tiles_for<3>(std::make_index_sequence<kAcc / 3>()), tiles_for<4>(std::make_index_sequence<kAcc / 4>())};

struct Problem {
  const float* x; int64_t m, ldx;
  const uint8_t* w; DType type; int64_t n, k; size_t w_row_bytes;
  float* y; int64_t ldy;
};

// y[i0:i0+mb, n0:n0+nr] for one task.
void run_task(const Problem& P, int64_t n0, int64_t nr, int64_t i0, int64_t mb) {
  alignas(64) float panel[kPanelRows * kSlab];
  for (int64_t k0 = 0; k0 < P.k; k0 += kSlab) {
    const int64_t kc = std::min(kSlab, P.k - k0);
    const float* w;
    int64_t ldw;
    if (P.type == DType::F32) {  // read in place: row stride k
      w = reinterpret_cast<const float*>(P.w + size_t(n0) * P.w_row_bytes) + k0;
      ldw = P.k;
    } else {
      for (int64_t r = 0; r < nr; ++r)
        decode_row_segment_fast(P.type, P.w + size_t(n0 + r) * P.w_row_bytes, P.k, k0, kc, panel + r * kSlab);
      w = panel;
      ldw = kSlab;
    }
    for (int64_t i = 0; i < mb; i += kMR) {
      const int mr = int(std::min<int64_t>(kMR, mb - i));
      const float* xi = P.x + (i0 + i) * P.ldx + k0;
      const int64_t nj_max = kAcc / mr;
      for (int64_t j = 0; j < nr; j += nj_max) {
        const int nj = int(std::min<int64_t>(nj_max, nr - j));
        float acc[kAcc];
        kTiles[mr - 1][nj - 1](xi, P.ldx, w + j * ldw, ldw, kc, acc);
        for (int a = 0; a < mr; ++a) {
          float* yr = P.y + (i0 + i + a) * P.ldy + n0 + j;
          for (int b = 0; b < nj; ++b) yr[b] = k0 == 0 ? acc[a * nj + b] : yr[b] + acc[a * nj + b];
        }
      }
    }
  }
}

Problem check_args(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy,
                   const char* who) {
  ZEROTH_CHECK(w.defined() && w.rank() == 2, "{}: W must be a 2-D (n, k) tensor, got {}", who,
               w.defined() ? w.describe() : std::string("an undefined tensor"));
  ZEROTH_CHECK(w.device() == Device::CPU, "{}: W {} must be on the CPU", who, w.describe());
  ZEROTH_CHECK(w.is_contiguous(), "{}: W {} must have contiguous rows; call contiguous() first", who,
               w.describe());
  ZEROTH_CHECK(is_quantized(w.dtype()) || is_float(w.dtype()),
               "{}: W {} must be a float or block dtype", who, w.describe());
  const int64_t n = w.dim(0), k = w.dim(1);
  ZEROTH_CHECK(m >= 0 && ldx >= k && ldy >= n,
               "{}: bad strides: m = {}, ldx = {} (needs >= k = {}), ldy = {} (needs >= n = {})", who, m,
               ldx, k, ldy, n);
  ZEROTH_CHECK(m == 0 || n == 0 || (x && y), "{}: null x or y", who);
  return Problem{x, m, ldx, static_cast<const uint8_t*>(w.raw()), w.dtype(), n, k, w.row_bytes(), y, ldy};
}

}  // namespace

void matmul(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy, int threads) {
  const Problem P = check_args(x, m, ldx, w, y, ldy, "matmul");
  if (P.m == 0 || P.n == 0) return;
  if (P.k == 0) {
    for (int64_t i = 0; i < P.m; ++i) std::fill(P.y + i * P.ldy, P.y + i * P.ldy + P.n, 0.0f);
    return;
  }
  const int64_t panels = (P.n + kPanelRows - 1) / kPanelRows;
  const int64_t mblocks = (P.m + kMBlock - 1) / kMBlock;
  parallel_for(panels * mblocks, 1, threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t % panels, b = t / panels;
      const int64_t n0 = p * kPanelRows, i0 = b * kMBlock;
      run_task(P, n0, std::min(kPanelRows, P.n - n0), i0, std::min(kMBlock, P.m - i0));
    }
  });
}

void matmul_reference(const float* x, int64_t m, int64_t ldx, const Tensor& w, float* y, int64_t ldy) {
  const Problem P = check_args(x, m, ldx, w, y, ldy, "matmul_reference");
  std::vector<float> row(size_t(P.k));  // one decoded W row at a time
  for (int64_t j = 0; j < P.n; ++j) {
    dequantize_row(P.type, P.w + size_t(j) * P.w_row_bytes, row.data(), P.k);
    for (int64_t i = 0; i < P.m; ++i) {
      const float* xi = P.x + i * P.ldx;
      double s = 0.0;
      for (int64_t kk = 0; kk < P.k; ++kk) s += double(xi[kk]) * double(row[size_t(kk)]);
      P.y[i * P.ldy + j] = float(s);
    }
  }
}

}  // namespace zeroth
