// dx (m, k) = dy (m, n) · W for W (n, k) in any float or block dtype: the
// product with the transposed base that backpropagation through a frozen,
// quantized projection needs (core/matmul.h).
//
// W's rows are stored along k in blocks, so the natural tile is a slab of k
// columns (a multiple of the block size) × up to kRows rows: the slab of each
// row is decoded once into a per-thread buffer (kRows × slab floats, 32 KiB at
// slab 64) and multiplied into the dx columns of that slab by a small dense
// GEMM (Eigen, single-threaded inside). Threads own disjoint column slabs of dx,
// so no partial sums are reduced across threads and every dx element sums the
// W rows in the same order whatever the thread count.
#define EIGEN_DONT_PARALLELIZE 1  // our threads own slabs; Eigen must not start its own team
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cpu/qgemm_decode.h"
#include "core/error.h"
#include "core/matmul.h"
#include "core/parallel.h"
#include "core/quant/quant.h"

namespace zeroth {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using Map = Eigen::Map<RowMat, 0, Stride>;
using ConstMap = Eigen::Map<const RowMat, 0, Stride>;

constexpr int64_t kRows = 128;  // W rows decoded per tile

struct DxProblem {
  const float* dy; int64_t m, lddy;
  const uint8_t* w; DType type; int64_t n, k; size_t row_bytes;
  float* dx; int64_t lddx;
};

DxProblem check_dx_args(const float* dy, int64_t m, int64_t lddy, const Tensor& w, float* dx, int64_t lddx,
                        const char* who) {
  ZEROTH_CHECK(w.defined() && w.rank() == 2, "{}: W must be a 2-D (n, k) tensor, got {}", who,
               w.defined() ? w.describe() : std::string("an undefined tensor"));
  ZEROTH_CHECK(w.device() == Device::CPU, "{}: W {} must be on the CPU", who, w.describe());
  ZEROTH_CHECK(w.is_contiguous(), "{}: W {} must have contiguous rows", who, w.describe());
  ZEROTH_CHECK(is_quantized(w.dtype()) || is_float(w.dtype()), "{}: W {} must be a float or block dtype", who,
               w.describe());
  const int64_t n = w.dim(0), k = w.dim(1);
  ZEROTH_CHECK(m >= 0 && lddy >= n && lddx >= k,
               "{}: bad strides: m = {}, lddy = {} (needs >= n = {}), lddx = {} (needs >= k = {})", who, m, lddy, n,
               lddx, k);
  ZEROTH_CHECK(m == 0 || k == 0 || (dy && dx), "{}: null dy or dx", who);
  return {dy, m, lddy, static_cast<const uint8_t*>(w.raw()), w.dtype(), n, k, w.row_bytes(), dx, lddx};
}

}  // namespace

void matmul_dx(const float* dy, int64_t m, int64_t lddy, const Tensor& w, float* dx, int64_t lddx, bool accumulate,
               int threads) {
  const DxProblem P = check_dx_args(dy, m, lddy, w, dx, lddx, "matmul_dx");
  if (P.m == 0 || P.k == 0) return;
  // A slab is a whole number of blocks (K-quants: 256; NF4: 64; others divide 64).
  const int64_t slab = std::max<int64_t>(64, dtype_info(P.type).block_elems);
  const int64_t slabs = (P.k + slab - 1) / slab;
  parallel_for(slabs, 1, threads, [&](int64_t s0, int64_t s1) {
    thread_local std::vector<float> buf;
    if (buf.size() < size_t(kRows * slab)) buf.resize(size_t(kRows * slab));
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t k0 = s * slab, kc = std::min(slab, P.k - k0);
      Map DX(P.dx + k0, P.m, kc, Stride(P.lddx));
      if (!accumulate) DX.setZero();
      for (int64_t j0 = 0; j0 < P.n; j0 += kRows) {
        const int64_t jr = std::min(kRows, P.n - j0);
        const ConstMap DY(P.dy + j0, P.m, jr, Stride(P.lddy));
        if (P.type == DType::F32) {  // read in place
          const ConstMap W(reinterpret_cast<const float*>(P.w + size_t(j0) * P.row_bytes) + k0, jr, kc,
                           Stride(int64_t(P.row_bytes / 4)));
          DX.noalias() += DY * W;
        } else {
          for (int64_t j = 0; j < jr; ++j)
            decode_row_segment_fast(P.type, P.w + size_t(j0 + j) * P.row_bytes, P.k, k0, kc, buf.data() + j * kc);
          const ConstMap W(buf.data(), jr, kc, Stride(kc));
          DX.noalias() += DY * W;
        }
      }
    }
  });
}

void matmul_dx_reference(const float* dy, int64_t m, int64_t lddy, const Tensor& w, float* dx, int64_t lddx,
                         bool accumulate) {
  const DxProblem P = check_dx_args(dy, m, lddy, w, dx, lddx, "matmul_dx_reference");
  std::vector<double> acc(size_t(P.m * P.k), 0.0);
  std::vector<float> row(size_t(P.k));
  for (int64_t j = 0; j < P.n; ++j) {
    dequantize_row(P.type, P.w + size_t(j) * P.row_bytes, row.data(), P.k);
    for (int64_t i = 0; i < P.m; ++i) {
      const double g = P.dy[i * P.lddy + j];
      for (int64_t kk = 0; kk < P.k; ++kk) acc[size_t(i * P.k + kk)] += g * double(row[size_t(kk)]);
    }
  }
  for (int64_t i = 0; i < P.m; ++i)
    for (int64_t kk = 0; kk < P.k; ++kk) {
      float& out = P.dx[i * P.lddx + kk];
      out = float((accumulate ? double(out) : 0.0) + acc[size_t(i * P.k + kk)]);
    }
}

}  // namespace zeroth
