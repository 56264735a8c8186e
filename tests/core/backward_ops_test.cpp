// The backward ops against float64: matmul_dx (dx = dy · W from packed blocks)
// against its double-accumulating reference for every weight dtype, and each
// row-wise op's backward (core/ops_backward.h) against central finite
// differences of a float64 reimplementation of the op's forward.
//
// Finite differences: f(θ) = Σ dy ⊙ op64(θ) in double, step h = 1e-6, so the
// truncation error (~h²) and rounding error (~1e-16/h) are both below 1e-9;
// what remains is the float32 arithmetic of the backward under test. Tolerance:
// max |analytic − numeric| ≤ 1e-6 · max |numeric| (measured ≤ 1.2e-7; float32 has 6e-8 relative
// precision; the sums are over at most a few hundred terms).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <functional>
#include <random>
#include <vector>

#include "core/matmul.h"
#include "core/ops.h"
#include "core/ops_backward.h"
#include "core/quant/quant.h"
#include "tests/core/quant_test_util.h"

using namespace zeroth;

namespace {

constexpr double kTol = 1e-6;

std::vector<double> randn(size_t n, uint32_t seed, double sd = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(0.0, sd);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
std::vector<float> to_f(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// Central differences of f at x (double), one coordinate at a time.
std::vector<double> numeric_grad(std::vector<double> x, const std::function<double(const std::vector<double>&)>& f) {
  const double h = 1e-6;
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

// max |a − n| / max |n|
double rel_err(const std::vector<float>& a, const std::vector<double>& n) {
  EXPECT_EQ(a.size(), n.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < n.size(); ++i) {
    num = std::max(num, std::abs(double(a[i]) - n[i]));
    den = std::max(den, std::abs(n[i]));
  }
  return den > 0 ? num / den : num;
}

// Prints the measured error (the README quotes these) and checks it.
void expect_small(double err, double tol, const std::string& what) {
  std::printf("  gradient check %-28s max err / max |grad| = %.2e (tolerance %.0e)\n", what.c_str(), err, tol);
  EXPECT_LT(err, tol) << what;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---- float64 forwards ----
std::vector<double> rmsnorm64(const std::vector<double>& x, const std::vector<double>& w, int64_t n, int64_t d,
                              double eps) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < n; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += x[size_t(r * d + i)] * x[size_t(r * d + i)];
    const double inv = 1.0 / std::sqrt(ss / double(d) + eps);
    for (int64_t i = 0; i < d; ++i) y[size_t(r * d + i)] = w[size_t(i)] * x[size_t(r * d + i)] * inv;
  }
  return y;
}

std::vector<double> rope64(std::vector<double> x, const std::vector<int32_t>& pos, int64_t heads, const RopeTable& t,
                           bool interleaved) {
  const int64_t hd = t.head_dim, half = hd / 2;
  for (size_t r = 0; r < pos.size(); ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < half; ++j) {
        double* v = x.data() + int64_t(r) * heads * hd + h * hd;
        double* a = interleaved ? v + 2 * j : v + j;
        double* b = interleaved ? v + 2 * j + 1 : v + j + half;
        const double c = t.cos[size_t(pos[r] * half + j)], s = t.sin[size_t(pos[r] * half + j)];
        const double x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
      }
  return x;
}

std::vector<double> attention64(const std::vector<double>& q, const std::vector<double>& k,
                                const std::vector<double>& v, const std::vector<SeqSpan>& seqs, int64_t heads,
                                int64_t kvh, int64_t hd) {
  const int64_t qd = heads * hd, kd = kvh * hd, group = heads / kvh;
  std::vector<double> out(q.size(), 0.0);
  for (const auto& s : seqs)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < s.length; ++i) {
        std::vector<double> a(size_t(i + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double d = 0;
          for (int64_t e = 0; e < hd; ++e)
            d += q[size_t((s.start + i) * qd + h * hd + e)] * k[size_t((s.start + j) * kd + (h / group) * hd + e)];
          a[size_t(j)] = d / std::sqrt(double(hd));
          mx = std::max(mx, a[size_t(j)]);
        }
        double sum = 0;
        for (auto& x : a) sum += (x = std::exp(x - mx));
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t e = 0; e < hd; ++e)
            out[size_t((s.start + i) * qd + h * hd + e)] +=
                a[size_t(j)] / sum * v[size_t((s.start + j) * kd + (h / group) * hd + e)];
      }
  return out;
}

}  // namespace

TEST(MatmulDx, MatchesReferenceForEveryDtype) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K,
                  DType::Q6_K, DType::I8_B64, DType::I4_B32, DType::NF4}) {
    const int64_t block = dtype_info(t).block_elems;
    const int64_t k = block == 256 ? 768 : (block == 1 ? 579 : 576);
    for (int64_t m : {1, 7, 70})
      for (int64_t n : {1, 13, 200}) {
        const Tensor w = test::make_weight(t, n, k, uint32_t(m + n));
        const int64_t lddy = n + 3, lddx = k + 5;
        const auto dy = test::normal_values(size_t(m * lddy), uint32_t(m * n));
        std::vector<float> dx(size_t(m * lddx), 0.5f), ref = dx;
        matmul_dx(dy.data(), m, lddy, w, dx.data(), lddx, true, 2);
        matmul_dx_reference(dy.data(), m, lddy, w, ref.data(), lddx, true);
        double num = 0, den = 0;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < k; ++j) {
            num = std::max(num, double(std::abs(dx[size_t(i * lddx + j)] - ref[size_t(i * lddx + j)])));
            den = std::max(den, double(std::abs(ref[size_t(i * lddx + j)])));
          }
          for (int64_t j = k; j < lddx; ++j) ASSERT_EQ(dx[size_t(i * lddx + j)], 0.5f) << "stride gap written";
        }
        EXPECT_LT(num / den, 1e-5) << dtype_name(t) << " m=" << m << " n=" << n;
      }
  }
}

TEST(MatmulDx, IsTheTransposeOfMatmul) {
  // ⟨dy, x·Wᵀ⟩ = ⟨dy·W, x⟩ for a quantized W: the two products read the same weights.
  const int64_t m = 9, n = 40, k = 256;
  const Tensor w = test::make_weight(DType::Q4_K, n, k, 3);
  const auto x = test::normal_values(size_t(m * k), 4), dy = test::normal_values(size_t(m * n), 5);
  std::vector<float> y(size_t(m * n)), dx(size_t(m * k));
  matmul(x.data(), m, k, w, y.data(), n, 1);
  matmul_dx(dy.data(), m, n, w, dx.data(), k, false, 1);
  double a = 0, b = 0;
  for (size_t i = 0; i < y.size(); ++i) a += double(dy[i]) * y[i];
  for (size_t i = 0; i < dx.size(); ++i) b += double(dx[i]) * x[i];
  EXPECT_NEAR(a, b, 1e-4 * std::abs(a));
}

TEST(MatmulDx, DoesNotDependOnThreads) {
  const Tensor w = test::make_weight(DType::Q8_0, 300, 640, 8);
  const auto dy = test::normal_values(size_t(33 * 300), 9);
  std::vector<float> a(size_t(33 * 640)), b(a.size());
  matmul_dx(dy.data(), 33, 300, w, a.data(), 640, false, 1);
  matmul_dx(dy.data(), 33, 300, w, b.data(), 640, false, 3);
  EXPECT_EQ(a, b);
}

TEST(BackwardOps, RmsNormMatchesFiniteDifferences) {
  const int64_t n = 5, d = 24;
  const double eps = 1e-5;
  const auto x = randn(size_t(n * d), 1), w = randn(size_t(d), 2, 0.5), dy = randn(size_t(n * d), 3);
  std::vector<float> dx(size_t(n * d), 0.0f), dw(size_t(d), 0.0f);
  const auto xf = to_f(x), wf = to_f(w), dyf = to_f(dy);
  rmsnorm_backward(xf.data(), wf.data(), dyf.data(), dx.data(), dw.data(), n, d, float(eps), 2);
  const auto ndx = numeric_grad(x, [&](const auto& xx) { return dot(dy, rmsnorm64(xx, w, n, d, eps)); });
  const auto ndw = numeric_grad(w, [&](const auto& ww) { return dot(dy, rmsnorm64(x, ww, n, d, eps)); });
  expect_small(rel_err(dx, ndx), kTol, "rmsnorm dx");
  expect_small(rel_err(dw, ndw), kTol, "rmsnorm dw");
  // The forward the check differentiates is the one zeroth runs.
  std::vector<float> y(size_t(n * d));
  rmsnorm(xf.data(), wf.data(), y.data(), n, d, float(eps), 1);
  EXPECT_LT(rel_err(y, rmsnorm64(x, w, n, d, eps)), 1e-6);
}

TEST(BackwardOps, RmsNormAccumulates) {
  const int64_t n = 3, d = 8;
  const auto x = to_f(randn(size_t(n * d), 4)), w = to_f(randn(size_t(d), 5)), dy = to_f(randn(size_t(n * d), 6));
  std::vector<float> a(size_t(n * d), 0.0f), b(size_t(n * d), 1.0f);
  rmsnorm_backward(x.data(), w.data(), dy.data(), a.data(), nullptr, n, d, 1e-5f);
  rmsnorm_backward(x.data(), w.data(), dy.data(), b.data(), nullptr, n, d, 1e-5f);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(b[i], a[i] + 1.0f);
}

TEST(BackwardOps, RopeMatchesFiniteDifferences) {
  for (bool interleaved : {true, false}) {
    const int64_t heads = 3, hd = 8, n = 6;
    const RopeTable table = make_rope_table(hd, 32, 10000.0);
    const std::vector<int32_t> pos = {0, 1, 2, 7, 19, 31};
    const auto x = randn(size_t(n * heads * hd), 7), dy = randn(x.size(), 8);
    auto g = to_f(dy);
    rope_backward(g.data(), pos.data(), n, heads, table, interleaved, 2);
    const auto num = numeric_grad(x, [&](const auto& xx) { return dot(dy, rope64(xx, pos, heads, table, interleaved)); });
    expect_small(rel_err(g, num), kTol, interleaved ? "rope (interleaved)" : "rope (rotate-half)");
  }
}

TEST(BackwardOps, GroupedQueryAttentionMatchesFiniteDifferences) {
  // Three packed sequences (lengths 1, 5, 3): the causal mask and the packing
  // mask both matter; 4 query heads share 2 kv heads.
  const int64_t heads = 4, kvh = 2, hd = 4, n = 9;
  const std::vector<SeqSpan> seqs = {{0, 1}, {1, 5}, {6, 3}};
  const auto q = randn(size_t(n * heads * hd), 10), k = randn(size_t(n * kvh * hd), 11),
             v = randn(size_t(n * kvh * hd), 12), dy = randn(q.size(), 13);
  const auto qf = to_f(q), kf = to_f(k), vf = to_f(v), dyf = to_f(dy);
  std::vector<float> dq(q.size()), dk(k.size(), 9.0f), dv(v.size(), 9.0f);
  causal_attention_backward(qf.data(), kf.data(), vf.data(), dyf.data(), dq.data(), dk.data(), dv.data(), seqs, heads,
                            kvh, hd, 2);
  auto f = [&](const auto& qq, const auto& kk, const auto& vv) {
    return dot(dy, attention64(qq, kk, vv, seqs, heads, kvh, hd));
  };
  expect_small(rel_err(dq, numeric_grad(q, [&](const auto& x) { return f(x, k, v); })), kTol, "attention dq");
  expect_small(rel_err(dk, numeric_grad(k, [&](const auto& x) { return f(q, x, v); })), kTol, "attention dk (GQA)");
  expect_small(rel_err(dv, numeric_grad(v, [&](const auto& x) { return f(q, k, x); })), kTol, "attention dv (GQA)");
  std::vector<float> out(q.size());
  causal_attention(qf.data(), kf.data(), vf.data(), out.data(), seqs, heads, kvh, hd, 1);
  EXPECT_LT(rel_err(out, attention64(q, k, v, seqs, heads, kvh, hd)), 1e-6);
}

TEST(BackwardOps, SwiGluMatchesFiniteDifferences) {
  const size_t n = 40;
  const auto g = randn(n, 14, 2.0), u = randn(n, 15), dy = randn(n, 16);
  const auto gf = to_f(g), uf = to_f(u), dyf = to_f(dy);
  std::vector<float> dg(n), du(n);
  silu_mul_backward(gf.data(), uf.data(), dyf.data(), dg.data(), du.data(), int64_t(n), 2);
  auto f = [&](const std::vector<double>& gg, const std::vector<double>& uu) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += dy[i] * gg[i] / (1.0 + std::exp(-gg[i])) * uu[i];
    return s;
  };
  expect_small(rel_err(dg, numeric_grad(g, [&](const auto& x) { return f(x, u); })), kTol, "swiglu dg");
  expect_small(rel_err(du, numeric_grad(u, [&](const auto& x) { return f(g, x); })), kTol, "swiglu du");
}
