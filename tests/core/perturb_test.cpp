// Perturbation streams: distribution checks (moments, Kolmogorov-Smirnov against
// N(0,1) with negative controls), Rademacher balance, random access (slices equal
// the whole), fast path == scalar reference, and key separation.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/perturb.h"

namespace zeroth {
namespace {

constexpr Distribution kBoth[] = {Distribution::Rademacher, Distribution::Gaussian};

std::vector<float> z_of(const PerturbationKey& k, Distribution d, int64_t begin, int64_t end) {
  std::vector<float> z(static_cast<size_t>(end - begin));
  generate_z(k, d, begin, end, z.data());
  return z;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](float x, float y) {
           return exact::bits(x) == exact::bits(y);
         });
}

// Kolmogorov's limiting survival function Q(lambda) = P(sqrt(n) D > lambda).
double kolmogorov_q(double lambda) {
  if (lambda < 0.2) return 1.0;
  double q = 0;
  for (int k = 1; k <= 100; ++k) q += 2 * ((k & 1) ? 1 : -1) * std::exp(-2.0 * k * k * lambda * lambda);
  return std::clamp(q, 0.0, 1.0);
}

// p-value of the one-sample KS test of `x` against N(0,1), with Stephens' finite-n
// correction lambda = (sqrt n + 0.12 + 0.11/sqrt n) D (accurate to <1% at this n).
double ks_normal_pvalue(std::vector<float> x) {
  std::sort(x.begin(), x.end());
  const double n = double(x.size());
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double cdf = 0.5 * std::erfc(-double(x[i]) / std::sqrt(2.0));
    d = std::max({d, double(i + 1) / n - cdf, cdf - double(i) / n});
  }
  const double sn = std::sqrt(n);
  return kolmogorov_q((sn + 0.12 + 0.11 / sn) * d);
}

TEST(Perturb, GaussianMoments) {
  const auto z = z_of({42, 0, 0, 0}, Distribution::Gaussian, 0, 1000000);
  double m1 = 0, m2 = 0, m4 = 0;
  for (float v : z) {
    m1 += v;
    m2 += double(v) * v;
    m4 += double(v) * v * v * v;
  }
  const double n = double(z.size());
  m1 /= n, m2 /= n, m4 /= n;
  // 5 standard errors: sd(mean) = 1e-3, sd(m2) = sqrt(2/n), sd(m4) = sqrt(96/n).
  EXPECT_NEAR(m1, 0.0, 5e-3);
  EXPECT_NEAR(m2, 1.0, 5 * std::sqrt(2 / n));
  EXPECT_NEAR(m4, 3.0, 5 * std::sqrt(96 / n));
  EXPECT_LE(*std::max_element(z.begin(), z.end()), 5.8f);  // |z| <= sqrt(48 ln 2) by construction
}

TEST(Perturb, GaussianPassesKolmogorovSmirnov) {
  const auto z = z_of({7, 1, 2, 3}, Distribution::Gaussian, 0, 1000000);
  EXPECT_GT(ks_normal_pvalue(z), 1e-3);
  // Negative controls: the same test rejects a uniform with the same mean and
  // variance, and the true draws scaled by 2% (sup |F - Phi| ~ 5e-3 vs a 1.95e-3
  // critical distance at alpha = 1e-3).
  std::vector<float> uniform(z.size()), scaled(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    uniform[i] = float((double(i) + 0.5) / double(z.size()) * 2 * std::sqrt(3.0) - std::sqrt(3.0));
    scaled[i] = z[i] * 1.02f;
  }
  EXPECT_LT(ks_normal_pvalue(uniform), 1e-6);
  EXPECT_LT(ks_normal_pvalue(scaled), 1e-6);
}

// The exact-op transform stays within a few float ulps of Box-Muller computed in
// double with libm on the same 24-bit u1 and 25-bit angle.
TEST(Perturb, ExactNormalMatchesDoublePrecisionBoxMuller) {
  double worst = 0;
  for (uint32_t t = 0; t < 200000; ++t) {
    const PhiloxBlock b = perturbation_block({99, t, 0, 0}, t);
    float z0, z1;
    exact::normal_pair(b.w[0], b.w[1], &z0, &z1);
    const double u1 = double((b.w[0] >> 8) + 1) / 16777216.0;
    const double frac = double(((b.w[1] >> 7) & 0x7FFFFF) * 2 + 1) / 16777216.0;
    const double angle = (double(b.w[1] >> 30) + frac) * (M_PI / 2);
    const double r = std::sqrt(-2 * std::log(u1));
    worst = std::max({worst, std::abs(z0 - r * std::cos(angle)), std::abs(z1 - r * std::sin(angle))});
  }
  EXPECT_LT(worst, 1e-6) << "worst absolute error " << worst;  // 5.3e-7 measured over 4M draws
}

TEST(Perturb, RademacherIsBalancedPlusMinusOne) {
  const auto z = z_of({5, 9, 0, 0}, Distribution::Rademacher, 0, 1000000);
  int64_t plus = 0, lag1 = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    ASSERT_TRUE(z[i] == 1.0f || z[i] == -1.0f) << i;
    plus += z[i] > 0;
    if (i) lag1 += int64_t(z[i] * z[i - 1]);
  }
  // 5 standard deviations of a fair binomial (sd = 500) and of the lag-1 sum (sd = 1000).
  EXPECT_NEAR(double(plus), 500000.0, 2500.0);
  EXPECT_LT(std::abs(double(lag1)), 5000.0);
}

TEST(Perturb, FastPathEqualsScalarReference) {
  for (Distribution d : kBoth) {
    const PerturbationKey k{0x0123456789abcdefull, 17, 4, 2};
    const int64_t begin = 12345, end = begin + 1000003;
    std::vector<float> ref(static_cast<size_t>(end - begin));
    generate_z_reference(k, d, begin, end, ref.data());
    EXPECT_TRUE(same_bits(z_of(k, d, begin, end), ref)) << distribution_name(d);
    for (int64_t i : {begin, begin + 1, begin + 4095, end - 1})
      EXPECT_EQ(exact::bits(z_at(k, d, i)), exact::bits(ref[size_t(i - begin)])) << distribution_name(d) << " " << i;
  }
}

TEST(Perturb, SlicesEqualTheWhole) {
  const PerturbationKey k{3, 1, 2, 3};
  for (Distribution d : kBoth) {
    const auto whole = z_of(k, d, 0, 5000);
    for (auto [a, b] : {std::pair<int64_t, int64_t>{0, 1}, {1, 2}, {3, 130}, {127, 1153}, {1023, 1025},
                        {777, 4999}, {1, 5000}, {2500, 2500}}) {
      const auto part = z_of(k, d, a, b);
      EXPECT_TRUE(same_bits(part, std::vector<float>(whole.begin() + a, whole.begin() + b)))
          << distribution_name(d) << " [" << a << ", " << b << ")";
    }
  }
}

TEST(Perturb, WorksAtTheEndOfTheIndexSpace) {
  const PerturbationKey k{11, 0, 0, 0};
  for (Distribution d : kBoth) {
    const int64_t end = max_stream_elements(d), begin = end - 3001;
    std::vector<float> ref(3001);
    generate_z_reference(k, d, begin, end, ref.data());
    EXPECT_TRUE(same_bits(z_of(k, d, begin, end), ref)) << distribution_name(d);
    std::vector<float> one(1);
    EXPECT_THROW(generate_z(k, d, end - 1, end + 1, one.data()), Error);
    EXPECT_THROW(generate_z(k, d, 5, 4, one.data()), Error);
  }
}

TEST(Perturb, EveryKeyFieldSelectsItsOwnStream) {
  const PerturbationKey base{1000, 10, 20, 30};
  const PerturbationKey others[] = {
      {1001, 10, 20, 30}, {1000 + (1ull << 32), 10, 20, 30},  // seed, low and high words
      {1000, 11, 20, 30}, {1000, 10, 21, 30}, {1000, 10, 20, 31},
      {1000, 20, 10, 30}, {1000, 30, 20, 10},  // the same numbers in other fields
  };
  for (Distribution d : kBoth) {
    const auto zb = z_of(base, d, 0, 4096);
    for (const auto& o : others) {
      const auto zo = z_of(o, d, 0, 4096);
      int64_t equal = 0;
      for (size_t i = 0; i < zb.size(); ++i) equal += zb[i] == zo[i];
      // Independent signs agree about half the time; Gaussians essentially never.
      if (d == Distribution::Rademacher)
        EXPECT_NEAR(double(equal), 2048.0, 200.0) << o.run_seed << " " << o.step << " " << o.member << " " << o.slot;
      else
        EXPECT_LT(equal, 4) << o.run_seed << " " << o.step << " " << o.member << " " << o.slot;
    }
  }
}

// Pinned outputs: the stream layout is part of every ledger, so any change to the
// counter layout, bit order or normal transform must show up here (values taken
// from this implementation when the layout was fixed; Philox itself is checked
// against Random123 and cuRAND in philox_test.cpp).
TEST(Perturb, StreamLayoutIsPinned) {
  const PerturbationKey k{0x5eed, 1, 2, 3};
  const PhiloxBlock b0 = philox4x32_10({{0, 3, 2, 1}}, {{0x5eed, 0}});
  const auto r = z_of(k, Distribution::Rademacher, 0, 128);
  for (int j = 0; j < 128; ++j) EXPECT_EQ(r[j] < 0, ((b0.w[j / 32] >> (j % 32)) & 1) == 1) << j;
  float g[4];
  exact::normal_pair(b0.w[0], b0.w[1], &g[0], &g[1]);
  exact::normal_pair(b0.w[2], b0.w[3], &g[2], &g[3]);
  EXPECT_TRUE(same_bits(z_of(k, Distribution::Gaussian, 0, 4), std::vector<float>(g, g + 4)));
  // The literal bits, so a change to the shared code is caught too.
  const uint32_t gaussian_bits[8] = {0xbf3c8e17, 0x3f76d4a3, 0xbe651810, 0x3f3cb39a,   // -0.7365, 0.9642, ...
                                     0xbdcdf8fd, 0x3e9050c4, 0x3db99e9c, 0xbf349416};
  const auto g8 = z_of(k, Distribution::Gaussian, 0, 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(exact::bits(g8[i]), gaussian_bits[i]) << i;
  uint32_t signs = 0;
  for (int j = 0; j < 32; ++j) signs |= uint32_t(r[j] < 0) << j;
  EXPECT_EQ(signs, 0x7a9f37fcu);
}

}  // namespace
}  // namespace zeroth
