// The backward ops against float64: matmul_dx (dx = dy · W from packed blocks)
// against its double-accumulating reference for every weight dtype, and each
// row-wise op's backward (core/ops_backward.h) against central finite
// differences of a float64 reimplementation of the op's forward; each tangent
// rule (core/ops_jvp.h) against directional central differences of the same
// float64 forward, (op64(x + h·ẋ) − op64(x − h·ẋ)) / 2h, element by element.
//
// Finite differences: f(θ) = Σ dy ⊙ op64(θ) in double, step h = 1e-6, so the
// truncation error (~h²) and rounding error (~1e-16/h) are both below 1e-9;
// what remains is the float32 arithmetic of the backward under test. Tolerance:
// max |analytic − numeric| ≤ 1e-6 · max |numeric| (measured ≤ 1.2e-7; float32 has 6e-8 relative
// precision; the sums are over at most a few hundred terms).
#include <cstdint>
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
#include "core/ops_jvp.h"
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

// ---- tangent rules (core/ops_jvp.h) ----
namespace {

// (f(x + h·t) − f(x − h·t)) / 2h, elementwise.
std::vector<double> numeric_jvp(const std::vector<double>& x, const std::vector<double>& t,
                                const std::function<std::vector<double>(const std::vector<double>&)>& f) {
  const double h = 1e-6;
  std::vector<double> xp(x), xm(x);
  for (size_t i = 0; i < x.size(); ++i) xp[i] += h * t[i], xm[i] -= h * t[i];
  const auto yp = f(xp), ym = f(xm);
  std::vector<double> out(yp.size());
  for (size_t i = 0; i < yp.size(); ++i) out[i] = (yp[i] - ym[i]) / (2 * h);
  return out;
}

std::vector<float> slice(const std::vector<float>& v, size_t begin, size_t len) {
  return {v.begin() + int64_t(begin), v.begin() + int64_t(begin + len)};
}

void expect_tangent(double err, const std::string& what) {
  std::printf("  tangent check  %-28s max err / max |tangent| = %.2e (tolerance %.0e)\n", what.c_str(), err, kTol);
  EXPECT_LT(err, kTol) << what;
}

}  // namespace

TEST(TangentOps, RmsNormMatchesFiniteDifferences) {
  // Two tangents at once: (ẋ, ẇ) moves input and gains; the second frozen-gain
  // call moves the input only.
  const int64_t n = 5, d = 24, count = 2;
  const double eps = 1e-5;
  const auto x = randn(size_t(n * d), 21), w = randn(size_t(d), 22, 0.5);
  const auto xd = randn(size_t(count * n * d), 23), wd = randn(size_t(count * d), 24);
  const auto xf = to_f(x), wf = to_f(w), xdf = to_f(xd), wdf = to_f(wd);
  std::vector<float> yd(xd.size()), yd_frozen(xd.size()), yd1(xd.size());
  rmsnorm_jvp(xf.data(), wf.data(), xdf.data(), wdf.data(), yd.data(), n, d, count, float(eps), 2);
  rmsnorm_jvp(xf.data(), wf.data(), xdf.data(), nullptr, yd_frozen.data(), n, d, count, float(eps), 2);
  for (int64_t c = 0; c < count; ++c) {
    const size_t o = size_t(c * n * d);
    std::vector<double> both(x), tb(size_t(n * d + d));  // (x, w) as one vector
    both.insert(both.end(), w.begin(), w.end());
    for (size_t i = 0; i < size_t(n * d); ++i) tb[i] = xd[o + i];
    for (size_t i = 0; i < size_t(d); ++i) tb[size_t(n * d) + i] = wd[size_t(c * d) + i];
    const auto num = numeric_jvp(both, tb, [&](const std::vector<double>& v) {
      return rmsnorm64({v.begin(), v.begin() + n * d}, {v.begin() + n * d, v.end()}, n, d, eps);
    });
    expect_tangent(rel_err(slice(yd, o, size_t(n * d)), num), "rmsnorm (x, w) tangent " + std::to_string(c));
    const auto num_x = numeric_jvp(x, {xd.begin() + int64_t(o), xd.begin() + int64_t(o) + n * d},
                                   [&](const auto& v) { return rmsnorm64(v, w, n, d, eps); });
    expect_tangent(rel_err(slice(yd_frozen, o, size_t(n * d)), num_x), "rmsnorm (x) tangent " + std::to_string(c));
  }
  rmsnorm_jvp(xf.data(), wf.data(), xdf.data(), wdf.data(), yd1.data(), n, d, count, float(eps), 1);
  EXPECT_EQ(yd, yd1) << "the thread count changes no bit";
}

TEST(TangentOps, GroupedQueryAttentionMatchesFiniteDifferences) {
  // The backward's setting: three packed sequences, 4 query heads on 2 kv heads.
  const int64_t heads = 4, kvh = 2, hd = 4, n = 9, count = 3;
  const std::vector<SeqSpan> seqs = {{0, 1}, {1, 5}, {6, 3}};
  const size_t nq = size_t(n * heads * hd), nk = size_t(n * kvh * hd);
  const auto q = randn(nq, 30), k = randn(nk, 31), v = randn(nk, 32);
  const auto qd = randn(size_t(count) * nq, 33), kd = randn(size_t(count) * nk, 34), vd = randn(size_t(count) * nk, 35);
  const auto qf = to_f(q), kf = to_f(k), vf = to_f(v), qdf = to_f(qd), kdf = to_f(kd), vdf = to_f(vd);
  std::vector<float> od(size_t(count) * nq), od1(od.size());
  causal_attention_jvp(qf.data(), kf.data(), vf.data(), qdf.data(), kdf.data(), vdf.data(), od.data(), seqs, heads,
                       kvh, hd, count, 2);
  std::vector<double> all(q);  // (q, k, v) as one vector
  all.insert(all.end(), k.begin(), k.end());
  all.insert(all.end(), v.begin(), v.end());
  for (int64_t c = 0; c < count; ++c) {
    std::vector<double> t(qd.begin() + c * int64_t(nq), qd.begin() + (c + 1) * int64_t(nq));
    t.insert(t.end(), kd.begin() + c * int64_t(nk), kd.begin() + (c + 1) * int64_t(nk));
    t.insert(t.end(), vd.begin() + c * int64_t(nk), vd.begin() + (c + 1) * int64_t(nk));
    const auto num = numeric_jvp(all, t, [&](const std::vector<double>& a) {
      return attention64({a.begin(), a.begin() + int64_t(nq)}, {a.begin() + int64_t(nq), a.begin() + int64_t(nq + nk)},
                         {a.begin() + int64_t(nq + nk), a.end()}, seqs, heads, kvh, hd);
    });
    expect_tangent(rel_err(slice(od, size_t(c) * nq, nq), num), "attention (GQA) tangent " + std::to_string(c));
  }
  causal_attention_jvp(qf.data(), kf.data(), vf.data(), qdf.data(), kdf.data(), vdf.data(), od1.data(), seqs, heads,
                       kvh, hd, count, 1);
  EXPECT_EQ(od, od1) << "the thread count changes no bit";
}

TEST(TangentOps, SwiGluMatchesFiniteDifferences) {
  const int64_t n = 40, count = 2;
  const auto g = randn(size_t(n), 40, 2.0), u = randn(size_t(n), 41);
  const auto gd = randn(size_t(count * n), 42), ud = randn(size_t(count * n), 43);
  const auto gf = to_f(g), uf = to_f(u), udf = to_f(ud);
  auto hd = to_f(gd);  // ġ in, ḣ out
  silu_mul_jvp(gf.data(), uf.data(), hd.data(), udf.data(), n, count, 2);
  std::vector<double> gu(g);
  gu.insert(gu.end(), u.begin(), u.end());
  for (int64_t c = 0; c < count; ++c) {
    std::vector<double> t(gd.begin() + c * n, gd.begin() + (c + 1) * n);
    t.insert(t.end(), ud.begin() + c * n, ud.begin() + (c + 1) * n);
    const auto num = numeric_jvp(gu, t, [&](const std::vector<double>& a) {
      std::vector<double> h(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) h[size_t(i)] = a[size_t(i)] / (1.0 + std::exp(-a[size_t(i)])) * a[size_t(n + i)];
      return h;
    });
    expect_tangent(rel_err(slice(hd, size_t(c * n), size_t(n)), num), "swiglu tangent " + std::to_string(c));
  }
}
