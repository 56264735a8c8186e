// LQ-LoRA's alternating decomposition (see lq_decompose.h). Shapes in comments:
// m rows (outputs), n columns (inputs), r rank, l = r + oversample sketch width.
//
// Cost per iteration on an (m, n) matrix: the randomized SVD's products,
// about 2·(2·power + 2)·m·n·l flops (power = 1 after the first iteration,
// which starts from the previous right basis), and one quantization pass.
#include "core/quant/lq_decompose.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "core/half.h"
#include "core/perturb.h"
#include "core/quant/nfk.h"
#include "core/quant/quant.h"

namespace zeroth {
namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMat = Eigen::MatrixXf;
using MapC = Eigen::Map<const Mat>;

// An orthonormal basis of the columns of y (thin Q of its QR).
ColMat orth(const ColMat& y) {
  Eigen::HouseholderQR<ColMat> qr(y);
  return qr.householderQ() * ColMat::Identity(y.rows(), y.cols());
}

struct Sketch {
  LowRank lr;
  ColMat basis;  // (n, l): right singular vectors of the sketch, the next warm start
};

Sketch rsvd(const Mat& a, int64_t r, int oversample, int power_iters, uint64_t seed, const ColMat* start) {
  const int64_t m = a.rows(), n = a.cols();
  const int64_t l = std::min<int64_t>(r + oversample, std::min(m, n));
  ColMat omega;
  if (start && start->rows() == n && start->cols() == l) {
    omega = *start;
  } else {
    std::vector<float> z(size_t(n * l));
    generate_z(PerturbationKey{seed, 0xfffffffeu, 0, 0}, Distribution::Gaussian, 0, n * l, z.data());
    omega = Eigen::Map<ColMat>(z.data(), n, l);
  }
  ColMat y = orth(a * omega);  // (m, l)
  for (int i = 0; i < power_iters; ++i) {
    const ColMat zt = orth(a.transpose() * y);  // (n, l)
    y = orth(a * zt);
  }
  const ColMat b = y.transpose() * a;  // (l, n)
  Eigen::BDCSVD<ColMat> svd(b, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const ColMat u = y * svd.matrixU();  // (m, l)
  Sketch out;
  const int64_t rr = std::min(r, l);
  out.lr.u.resize(size_t(m * r), 0.0f);
  out.lr.s.assign(size_t(r), 0.0f);
  out.lr.v.resize(size_t(n * r), 0.0f);
  for (int64_t j = 0; j < rr; ++j) {
    out.lr.s[size_t(j)] = svd.singularValues()(j);
    for (int64_t i = 0; i < m; ++i) out.lr.u[size_t(i * r + j)] = u(i, j);
    for (int64_t i = 0; i < n; ++i) out.lr.v[size_t(i * r + j)] = svd.matrixV()(i, j);
  }
  out.basis = svd.matrixV();
  return out;
}

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// l1 (m, r), l2 (r, n) ← the best rank-r approximation of `resid` in the
// weighted norm (sr = √ρ, sc = √γ), split √σ to each side; bf16-rounded if asked.
void low_rank_step(const Mat& resid, const Eigen::VectorXf& sr, const Eigen::VectorXf& sc, const LqOptions& opt,
                   int power, const ColMat* start, Mat& l1, Mat& l2, ColMat& basis_out) {
  const int64_t m = resid.rows(), n = resid.cols(), r = opt.rank;
  const Mat scaled = sr.asDiagonal() * resid * sc.asDiagonal();
  const Sketch sk = rsvd(scaled, r, opt.oversample, power, opt.seed, start);
  basis_out = sk.basis;
  l1.resize(m, r);
  l2.resize(r, n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < r; ++j) l1(i, j) = sk.lr.u[size_t(i * r + j)] * std::sqrt(sk.lr.s[size_t(j)]) / sr(i);
  for (int64_t j = 0; j < r; ++j)
    for (int64_t i = 0; i < n; ++i) l2(j, i) = sk.lr.v[size_t(i * r + j)] * std::sqrt(sk.lr.s[size_t(j)]) / sc(i);
  if (opt.bf16_factors) {
    l1 = l1.unaryExpr(&round_bf16);
    l2 = l2.unaryExpr(&round_bf16);
  }
}

struct Weights {
  Eigen::VectorXf sr, sc;  // √ρ, √γ
};
Weights check_and_weights(int64_t m, int64_t n, DType format, const LqOptions& opt) {
  const int64_t r = opt.rank;
  ZEROTH_CHECK(r >= 0 && r <= std::min(m, n), "LQ decomposition: rank {} is larger than the ({}, {}) matrix allows "
               "(at most {}); lower --rank", r, m, n, std::min(m, n));
  ZEROTH_CHECK(opt.row_weights.empty() || int64_t(opt.row_weights.size()) == m,
               "LQ decomposition: {} row weights for {} rows", opt.row_weights.size(), m);
  ZEROTH_CHECK(opt.col_weights.empty() || int64_t(opt.col_weights.size()) == n,
               "LQ decomposition: {} column weights for {} columns", opt.col_weights.size(), n);
  ZEROTH_CHECK(opt.max_iters >= 1, "LQ decomposition: max_iters must be at least 1");
  (void)row_bytes(format, n);  // rows must split into the format's blocks
  Weights w{Eigen::VectorXf::Ones(m), Eigen::VectorXf::Ones(n)};
  for (int64_t i = 0; i < m && !opt.row_weights.empty(); ++i) {
    ZEROTH_CHECK(opt.row_weights[size_t(i)] > 0, "LQ decomposition: row weight {} is not positive", i);
    w.sr(i) = std::sqrt(opt.row_weights[size_t(i)]);
  }
  for (int64_t j = 0; j < n && !opt.col_weights.empty(); ++j) {
    ZEROTH_CHECK(opt.col_weights[size_t(j)] > 0, "LQ decomposition: column weight {} is not positive", j);
    w.sc(j) = std::sqrt(opt.col_weights[size_t(j)]);
  }
  return w;
}

}  // namespace

void fake_quantize(DType format, const float* x, int64_t m, int64_t n, float* out) {
  std::vector<uint8_t> row(row_bytes(format, n));
  if (is_nf_family(format)) {  // the same floats without packing (tests/core/quant_nfk_test.cpp)
    for (int64_t i = 0; i < m * n; ++i)
      ZEROTH_CHECK(std::isfinite(x[i]), "cannot quantize to {}: element {} is {}", dtype_name(format), i, x[i]);
    for (int64_t i = 0; i < m; ++i) roundtrip_nfk(format, x + i * n, n, out + i * n);
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    quantize_row(format, x + i * n, row.data(), n);
    dequantize_row(format, row.data(), out + i * n, n);
  }
}

std::vector<float> lq_first_target(const float* w, int64_t m, int64_t n, DType format, const LqOptions& opt) {
  const Weights wt = check_and_weights(m, n, format, opt);
  const MapC W(w, m, n);
  if (opt.rank == 0) return std::vector<float>(w, w + m * n);
  Mat l1, l2;
  ColMat basis;
  low_rank_step(W, wt.sr, wt.sc, opt, opt.power_iters, nullptr, l1, l2, basis);
  const Mat target = W - l1 * l2;
  return std::vector<float>(target.data(), target.data() + m * n);
}

LowRank randomized_svd(const float* a, int64_t m, int64_t n, int64_t r, int oversample, int power_iters,
                       uint64_t seed, const std::vector<float>* start) {
  ZEROTH_CHECK(r > 0 && r <= std::min(m, n), "randomized SVD: rank {} must be in 1..{} for a ({}, {}) matrix", r,
               std::min(m, n), m, n);
  ColMat s;
  if (start) s = Eigen::Map<const Mat>(start->data(), n, int64_t(start->size()) / n);
  return rsvd(MapC(a, m, n), r, oversample, power_iters, seed, start ? &s : nullptr).lr;
}

LqResult lq_decompose(const float* w, int64_t m, int64_t n, DType format, const LqOptions& opt) {
  const int64_t r = opt.rank;
  const Weights wt = check_and_weights(m, n, format, opt);
  const Eigen::VectorXf &sr = wt.sr, &sc = wt.sc;
  const MapC W(w, m, n);
  auto weighted_err = [&](const Mat& residual) {
    return double((sr.asDiagonal() * residual * sc.asDiagonal()).cwiseAbs2().cast<double>().sum());
  };

  LqResult res;
  res.norm2 = weighted_err(W);
  Mat q(m, n), lowrank = Mat::Zero(m, n), target(m, n);
  if (r == 0) {  // plain quantization
    fake_quantize(format, w, m, n, q.data());
    res.q.assign(q.data(), q.data() + m * n);
    res.target.assign(w, w + m * n);
    res.error = weighted_err(W - q);
    res.errors = {res.error};
    res.iterations = 1;
    return res;
  }
  Mat best_q, best_l1, best_l2, best_target;
  double best = INFINITY;
  ColMat basis;
  Mat l1(m, r), l2(r, n);
  q.setZero();
  for (int it = 0; it < opt.max_iters; ++it) {
    // L1·L2 ← weighted best rank-r approximation of W − Q.
    low_rank_step(W - q, sr, sc, opt, it == 0 ? opt.power_iters : 1, it == 0 ? nullptr : &basis, l1, l2, basis);
    lowrank.noalias() = l1 * l2;
    // Q ← quantize(W − L1·L2).
    target = W - lowrank;
    fake_quantize(format, target.data(), m, n, q.data());
    const double err = weighted_err(target - q);
    res.errors.push_back(err);
    res.iterations = it + 1;
    if (err < best) {
      best = err;
      best_q = q;
      best_target = target;
      best_l1 = l1;
      best_l2 = l2;
    }
    // The paper's rule: stop once the error no longer falls (1e-4 relative).
    if (it > 0 && !(err < res.errors[size_t(it) - 1] * (1.0 - 1e-4))) break;
  }
  res.error = best;
  res.q.assign(best_q.data(), best_q.data() + m * n);
  res.target.assign(best_target.data(), best_target.data() + m * n);
  res.l1.assign(best_l1.data(), best_l1.data() + m * r);
  res.l2.assign(best_l2.data(), best_l2.data() + r * n);
  return res;
}

}  // namespace zeroth
