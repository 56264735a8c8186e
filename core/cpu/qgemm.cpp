// y (m, n) = x (m, k) · Wᵀ for W (n, k) in any float or block dtype.
//
// Fast path, BLIS-style, in two variants that differ in which operand is
// transposed. Work is cut into tasks of (a group of up to 96 y columns = 96 W
// rows) × (a block of up to kMBlock x rows), walked in k slabs of kSlab (a
// multiple of every block size); scratch is per thread, never a full f32 W.
//
// Panel path (m < 16 or m >= 96): per slab the task decodes its W rows with
// the AVX2 decoders and packs them transposed into panels of 16 columns,
// [kc][16] f32 (16 KiB each, L1-resident while used). A register microkernel
// walks a panel per tile: per k it loads 16·NP weights, broadcasts one x value
// per row and issues MR × 2·NP FMAs into 12 (or 8) ymm accumulators: 6 rows ×
// 1 panel for large m down to 1 row × 6 panels for a single row. The W decode
// and transpose are shared by the task's (up to 384) x rows.
//
// x-packed path (16 <= m < 96, see run_task_xpack): x rows are transposed
// instead, and W rows are only decoded, which is cheaper when there are fewer
// x rows than W rows per task.
//
// Determinism: every y[i][j] is the same plain chain c = fma(x[i][kk], w[j][kk], c)
// over kk = 0, 1, …, k-1 from c = 0, whatever the path, tile shape, group, slab,
// task or thread it falls in (between slabs the chain's value is parked in y or
// in scratch, exactly; fma's product commutes exactly, so the paths agree). So
// results do not depend on the thread count, nor on the other rows of the
// batch: a row alone gives the same bits as that row inside any batch. They
// differ from matmul_reference (double accumulation) by f32 rounding only.
//
// Cost of that rule: a single row needs W transposed (lanes must be columns),
// so m = 1 pays decode + transpose per weight. Generation with integer weight
// formats can use matmul_int8 (core/cpu/qgemm.h) instead.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
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

constexpr int64_t kNR = 16;      // y columns (W rows) per panel: two ymm vectors
constexpr int64_t kSlab = 256;   // k per slab: multiple of 1, 32, 64, 128, 256; packed panel = 16 KiB
constexpr int64_t kGroup = 6;    // panels per task: a single x row runs 1 × 6 panels
constexpr int64_t kMBlock = 384; // x rows per task (multiple of 6): its x slab is 384 KiB (L2)
constexpr int kMR = 6;           // most x rows per tile
constexpr int kAcc = 12;         // accumulator budget: MR × 2·NP ≤ 12 of the 16 ymm registers

// c[i][0, 16·NP) continues its chains over kc packed k values: w is NP panels
// [kc][16] (panel stride wps floats), x rows are ldx apart, c rows ldc apart.
// load_c = false starts the chains from zero (first slab).
template <int MR, int NP>
void micro(int64_t kc, const float* x, int64_t ldx, const float* w, int64_t wps, float* c, int64_t ldc,
           bool load_c) {
#if ZEROTH_QGEMM_FMA
  constexpr int NV = 2 * NP;
  // Fully unrolled so GCC keeps acc in registers (a rolled loop over an array
  // made it park the accumulators on the stack every k step).
  __m256 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
  if (load_c) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_loadu_ps(c + i * ldc + 8 * v);
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    if constexpr (NP == 1) {  // 2 weight vectors reused by every row
      const __m256 w0 = _mm256_load_ps(w + kk * kNR), w1 = _mm256_load_ps(w + kk * kNR + 8);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m256 xb = _mm256_broadcast_ss(x + i * ldx + kk);
        acc[i][0] = _mm256_fmadd_ps(xb, w0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(xb, w1, acc[i][1]);
      }
    } else {  // weights as FMA memory operands (L1): holding 2·NP of them would spill
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m256 xb = _mm256_broadcast_ss(x + i * ldx + kk);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v)
          acc[i][v] = _mm256_fmadd_ps(xb, _mm256_load_ps(w + (v / 2) * wps + kk * kNR + 8 * (v % 2)), acc[i][v]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
#else
  // Same chains with scalar fmaf (std::fma is exact-rounded like the FMA unit).
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NP * kNR; ++j) {
      float s = load_c ? c[i * ldc + j] : 0.0f;
      for (int64_t kk = 0; kk < kc; ++kk) s = __builtin_fmaf(x[i * ldx + kk], w[(j / kNR) * wps + kk * kNR + j % kNR], s);
      c[i * ldc + j] = s;
    }
#endif
}

using MicroFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

// kMicro[mr-1][np-1] for np ≤ max_panels(mr): 6×1, 5×1, 4×1, 3×2, 2×3, 1×6.
constexpr int max_panels(int mr) { return std::max(1, kAcc / (2 * mr)); }
template <int MR, size_t... P>
constexpr std::array<MicroFn, kGroup> micros_for(std::index_sequence<P...>) {
  std::array<MicroFn, kGroup> t{};
  ((t[P] = &micro<MR, int(P) + 1>), ...);
  return t;
}
constexpr std::array<std::array<MicroFn, kGroup>, kMR> kMicro = {
    micros_for<1>(std::make_index_sequence<max_panels(1)>()), micros_for<2>(std::make_index_sequence<max_panels(2)>()),
    micros_for<3>(std::make_index_sequence<max_panels(3)>()), micros_for<4>(std::make_index_sequence<max_panels(4)>()),
    micros_for<5>(std::make_index_sequence<max_panels(5)>()), micros_for<6>(std::make_index_sequence<max_panels(6)>())};

alignas(32) const float kZeros[kSlab] = {};  // stands in for padding rows

struct Problem {
  const float* x; int64_t m, ldx;
  const uint8_t* w; DType type; int64_t n, k; size_t w_row_bytes;
  float* y; int64_t ldy;
};

// dst[kk*ldd + r] = rows[r][kk] for r < nrows (a multiple of 8), kk < kc: the
// transpose of row segments into a packed [kc][ldd] layout, 8×8 blocks at a time.
void pack_transpose(const float* const* rows, int64_t nrows, int64_t kc, float* dst, int64_t ldd) {
  int64_t kk = 0;
#if ZEROTH_QGEMM_FMA
  for (; kk + 8 <= kc; kk += 8)
    for (int64_t rb = 0; rb < nrows; rb += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows[rb + i] + kk);
      // 8×8 transpose: interleave pairs, then quads, then swap 128-bit halves.
      const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d = dst + kk * ldd + rb;
      _mm256_storeu_ps(d + 0 * ldd, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(d + 1 * ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
#endif
  for (; kk < kc; ++kk)  // k tail of plain-float weights (k % 8 != 0)
    for (int64_t r = 0; r < nrows; ++r) dst[kk * ldd + r] = rows[r][kk];
}

// Packs panel columns [n0, n0+nr) of slab [k0, k0+kc) into dst ([kc][16];
// columns ≥ nr are zero). rowbuf: 16 × kSlab scratch for decoded rows.
void pack_panel(const Problem& P, int64_t n0, int64_t nr, int64_t k0, int64_t kc, float* rowbuf, float* dst) {
  const float* rows[16];
  for (int64_t r = 0; r < 16; ++r) {
    if (r >= nr) {
      rows[r] = kZeros;
    } else if (P.type == DType::F32) {  // read in place
      rows[r] = reinterpret_cast<const float*>(P.w + size_t(n0 + r) * P.w_row_bytes) + k0;
    } else {
      decode_row_segment_fast(P.type, P.w + size_t(n0 + r) * P.w_row_bytes, P.k, k0, kc, rowbuf + r * kSlab);
      rows[r] = rowbuf + r * kSlab;
    }
  }
  pack_transpose(rows, 16, kc, dst, kNR);
}

// y[i0:i0+mb, n0:n0+ncols] for one task (ncols ≤ kGroup·16; only the task's
// last panel may be partial).
void run_task(const Problem& P, int64_t n0, int64_t ncols, int64_t i0, int64_t mb) {
  // Scratch per thread (112 KiB: too big for an OpenMP worker's stack to be safe).
  thread_local std::vector<float> scratch;
  constexpr size_t kScratch = size_t((kGroup + 1) * kSlab * kNR);
  if (scratch.size() < kScratch + 16) scratch.resize(kScratch + 16);
  float* packed = scratch.data() + (16 - (reinterpret_cast<uintptr_t>(scratch.data()) / 4) % 16) % 16;  // 64-B aligned
  float* rowbuf = packed + kGroup * kSlab * kNR;
  const int64_t np = (ncols + kNR - 1) / kNR;
  const int64_t full = ncols / kNR;  // panels whose 16 columns are all in y
  for (int64_t k0 = 0; k0 < P.k; k0 += kSlab) {
    const int64_t kc = std::min(kSlab, P.k - k0);
    const bool load_c = k0 > 0;
    for (int64_t p = 0; p < np; ++p)
      pack_panel(P, n0 + p * kNR, std::min(kNR, ncols - p * kNR), k0, kc, rowbuf, packed + p * kc * kNR);
    const float* xs = P.x + i0 * P.ldx + k0;
    float* ys = P.y + i0 * P.ldy + n0;
    // Full panels, in chunks of as many panels as the main row tile takes;
    // panel-chunk outer so the packed chunk stays in L1 across row tiles.
    const int64_t pstep = max_panels(int(std::min<int64_t>(kMR, mb)));
    for (int64_t p = 0; p < full; p += pstep) {
      const int64_t pend = std::min(full, p + pstep);
      for (int64_t i = 0; i < mb;) {
        const int mr = int(std::min<int64_t>(kMR, mb - i));
        for (int64_t q = p; q < pend;) {  // a short last row tile may take fewer panels per call
          const int npp = int(std::min<int64_t>(max_panels(mr), pend - q));
          kMicro[mr - 1][npp - 1](kc, xs + i * P.ldx, P.ldx, packed + q * kc * kNR, kc * kNR,
                                  ys + i * P.ldy + q * kNR, P.ldy, load_c);
          q += npp;
        }
        i += mr;
      }
    }
    if (full < np) {  // partial last panel: chains parked in a 16-wide scratch
      const int64_t nr = ncols - full * kNR;
      alignas(32) float c[kMR * kNR];
      for (int64_t i = 0; i < mb; i += kMR) {
        const int mr = int(std::min<int64_t>(kMR, mb - i));
        for (int a = 0; a < mr; ++a)
          std::memcpy(c + a * kNR, ys + (i + a) * P.ldy + full * kNR, size_t(nr) * 4);
        kMicro[mr - 1][0](kc, xs + i * P.ldx, P.ldx, packed + full * kc * kNR, kc * kNR, c, kNR, load_c);
        for (int a = 0; a < mr; ++a)
          std::memcpy(ys + (i + a) * P.ldy + full * kNR, c + a * kNR, size_t(nr) * 4);
      }
    }
  }
}

// ---- many x rows (m >= kXPackMinRows): x packed, W broadcast ----------------
// For m >= 16 the roles swap: a task packs its x rows transposed ([kc][mb],
// once per slab, shared by all 96 columns of the group) and decodes its W rows
// untransposed, so nothing of W is transposed. The microkernel keeps 16 x rows
// (two vectors) × 6 W rows; each lane is still one y[i][j]'s chain
// fma(x, w, c) in k order (fma's product commutes exactly), so both paths give
// the same bits for every element. Chains are parked per task in a transposed
// C scratch ([col][row]) and written to y once at the end.
// Each path transposes one operand per task: x-pack transposes mb x rows per
// 96 columns, the panel path 96 W rows per mb x rows, so x-pack wins below
// mb = 96 (measured: 1.9× at m = 16; 0.75× of the panel path at m = 512).
constexpr int64_t kXPackMinRows = 16;
constexpr int64_t kXPackMaxRows = 96;
constexpr int kXR = 16;  // x rows per tile
constexpr int kWJ = 6;   // W rows per tile

void micro_x(int64_t kc, const float* xp, int64_t ldxp, const float* const* wrows, float* ct, int64_t ldct,
             bool load_c) {
#if ZEROTH_QGEMM_FMA
  __m256 acc[kWJ][2];
#pragma GCC unroll 16
  for (int j = 0; j < kWJ; ++j) {
    acc[j][0] = load_c ? _mm256_load_ps(ct + j * ldct) : _mm256_setzero_ps();
    acc[j][1] = load_c ? _mm256_load_ps(ct + j * ldct + 8) : _mm256_setzero_ps();
  }
  const float* wj[kWJ];
  for (int j = 0; j < kWJ; ++j) wj[j] = wrows[j];
  // One broadcast live at a time: 12 accumulators + 2 x vectors + 1 broadcast
  // fit the 16 ymm registers (all six broadcasts up front made GCC spill).
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m256 x0 = _mm256_load_ps(xp + kk * ldxp), x1 = _mm256_load_ps(xp + kk * ldxp + 8);
#pragma GCC unroll 16
    for (int j = 0; j < kWJ; ++j) {
      const __m256 b = _mm256_broadcast_ss(wj[j] + kk);
      acc[j][0] = _mm256_fmadd_ps(x0, b, acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(x1, b, acc[j][1]);
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < kWJ; ++j) {
    _mm256_store_ps(ct + j * ldct, acc[j][0]);
    _mm256_store_ps(ct + j * ldct + 8, acc[j][1]);
  }
#else
  for (int j = 0; j < kWJ; ++j)
    for (int i = 0; i < kXR; ++i) {
      float s = load_c ? ct[j * ldct + i] : 0.0f;
      for (int64_t kk = 0; kk < kc; ++kk) s = __builtin_fmaf(xp[kk * ldxp + i], wrows[j][kk], s);
      ct[j * ldct + i] = s;
    }
#endif
}

void run_task_xpack(const Problem& P, int64_t n0, int64_t ncols, int64_t i0, int64_t mb) {
  const int64_t mpad = (mb + kXR - 1) / kXR * kXR;               // x rows rounded up to tiles
  const int64_t jpad = (ncols + kWJ - 1) / kWJ * kWJ;            // W rows rounded up to tiles
  thread_local std::vector<float> scratch;
  constexpr int64_t kMaxPad = (kXPackMaxRows + kXR - 1) / kXR * kXR;  // mb < kXPackMaxRows here
  const size_t need = size_t(kSlab * kMaxPad + kGroup * kNR * kSlab + kGroup * kNR * kMaxPad) + 16;
  if (scratch.size() < need) scratch.resize(need);
  float* xp = scratch.data() + (16 - (reinterpret_cast<uintptr_t>(scratch.data()) / 4) % 16) % 16;  // 64-B aligned
  float* wd = xp + kSlab * kMaxPad;            // decoded W rows, [jpad][kSlab]
  float* ct = wd + kGroup * kNR * kSlab;       // chains, [jpad][mpad]
  const float* xrows[kMaxPad];
  const float* wrows[kGroup * kNR];
  for (int64_t k0 = 0; k0 < P.k; k0 += kSlab) {
    const int64_t kc = std::min(kSlab, P.k - k0);
    for (int64_t i = 0; i < mpad; ++i) xrows[i] = i < mb ? P.x + (i0 + i) * P.ldx + k0 : kZeros;
    pack_transpose(xrows, mpad, kc, xp, mpad);
    for (int64_t j = 0; j < jpad; ++j) {
      if (j >= ncols) {
        wrows[j] = kZeros;
      } else if (P.type == DType::F32) {  // read in place
        wrows[j] = reinterpret_cast<const float*>(P.w + size_t(n0 + j) * P.w_row_bytes) + k0;
      } else {
        decode_row_segment_fast(P.type, P.w + size_t(n0 + j) * P.w_row_bytes, P.k, k0, kc, wd + j * kSlab);
        wrows[j] = wd + j * kSlab;
      }
    }
    // W tile outer (6 rows × kc, L1-resident), x tiles streamed from L2.
    for (int64_t j = 0; j < jpad; j += kWJ)
      for (int64_t i = 0; i < mpad; i += kXR) micro_x(kc, xp + i, mpad, wrows + j, ct + j * mpad + i, mpad, k0 > 0);
  }
  for (int64_t i = 0; i < mb; ++i) {
    float* yr = P.y + (i0 + i) * P.ldy + n0;
    for (int64_t j = 0; j < ncols; ++j) yr[j] = ct[j * mpad + i];
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
  const int64_t gcols = kGroup * kNR;
  const int64_t groups = (P.n + gcols - 1) / gcols;
  // Equal x-row blocks (multiples of 6, at most kMBlock), so tasks are alike
  // and the static split keeps both threads busy.
  const int64_t mblocks = (P.m + kMBlock - 1) / kMBlock;
  const int64_t mbs = ((P.m + mblocks - 1) / mblocks + kMR - 1) / kMR * kMR;
  parallel_for(groups * mblocks, 1, threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t % groups, b = t / groups;
      const int64_t n0 = g * gcols, i0 = b * mbs;
      if (i0 >= P.m) continue;  // rounding mbs up can leave a last block empty
      if (P.m >= kXPackMinRows && P.m < kXPackMaxRows)
        run_task_xpack(P, n0, std::min(gcols, P.n - n0), i0, std::min(mbs, P.m - i0));
      else
        run_task(P, n0, std::min(gcols, P.n - n0), i0, std::min(mbs, P.m - i0));
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
