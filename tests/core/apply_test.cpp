// Fused apply: the fast path is bit-exact against the scalar reference, does not
// depend on threads or on how θ is sliced into tensors, and equals a naive
// per-term loop where that loop's arithmetic is exact.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/apply.h"
#include "core/error.h"

namespace zeroth {
namespace {

constexpr Distribution kBoth[] = {Distribution::Rademacher, Distribution::Gaussian};

std::vector<ScaledPerturbation> make_terms(int count, uint32_t step, float scale) {
  std::mt19937 rng(step);
  std::normal_distribution<float> coeff(0.0f, scale);
  std::vector<ScaledPerturbation> terms;
  for (int k = 0; k < count; ++k)
    terms.push_back({{0xabcdef12345ull, step + uint32_t(k / 4), uint32_t(k % 4), uint32_t(k)}, coeff(rng)});
  return terms;
}

std::vector<float> make_theta(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> w(0.0f, 0.05f);
  std::vector<float> theta(static_cast<size_t>(n));
  for (float& v : theta) v = w(rng);
  return theta;
}

// Counts elements whose bits differ.
int64_t bit_mismatches(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += exact::bits(a[i]) != exact::bits(b[i]);
  return bad;
}

TEST(Apply, FastPathIsBitExactAgainstReference) {
  const int64_t offset = 1000003, n = 50001;  // odd offset and length: partial words and chunks
  const auto theta0 = make_theta(n, 1);
  for (Distribution d : kBoth)
    for (int count : {1, 3, 17})
      for (float decay : {1.0f, 0.9995f}) {
        const auto terms = make_terms(count, 5, 1e-3f);
        auto fast = theta0, ref = theta0;
        apply_perturbations(terms, d, offset, n, fast.data(), decay, 2);
        apply_perturbations_reference(terms, d, offset, n, ref.data(), decay);
        EXPECT_EQ(bit_mismatches(fast, ref), 0) << distribution_name(d) << " K=" << count << " decay " << decay;
        EXPECT_GT(bit_mismatches(fast, theta0), n / 2) << "apply changed almost nothing";
      }
}

TEST(Apply, IndependentOfThreadCount) {
  const int64_t n = 100000;
  const auto theta0 = make_theta(n, 2);
  const auto terms = make_terms(8, 9, 1e-2f);
  for (Distribution d : kBoth) {
    auto one = theta0, two = theta0;
    apply_perturbations(terms, d, 77, n, one.data(), 0.999f, 1);
    apply_perturbations(terms, d, 77, n, two.data(), 0.999f, 2);
    EXPECT_EQ(bit_mismatches(one, two), 0) << distribution_name(d);
  }
}

// θ -= c_k z_k one term at a time. With dyadic coefficients and θ on a coarse
// grid every sum is exact, so the fused order must give the very same bits.
TEST(Apply, EqualsNaivePerTermLoop) {
  const int64_t offset = 333, n = 20000;
  std::vector<ScaledPerturbation> terms = make_terms(12, 3, 1.0f);
  for (size_t k = 0; k < terms.size(); ++k) terms[k].coeff = float(int(k) - 5) / 64.0f;
  std::vector<float> theta0(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) theta0[size_t(i)] = float(i % 97 - 48) / 16.0f;

  auto fused = theta0, naive = theta0;
  apply_perturbations(terms, Distribution::Rademacher, offset, n, fused.data());
  std::vector<float> z(static_cast<size_t>(n));
  for (const auto& t : terms) {
    generate_z(t.key, Distribution::Rademacher, offset, offset + n, z.data());
    for (int64_t i = 0; i < n; ++i) naive[size_t(i)] -= t.coeff * z[size_t(i)];
  }
  EXPECT_EQ(bit_mismatches(fused, naive), 0);

  // Gaussian sums round, so compare with a double-precision naive loop.
  fused = theta0;
  apply_perturbations(terms, Distribution::Gaussian, offset, n, fused.data());
  std::vector<double> exact_theta(theta0.begin(), theta0.end());
  for (const auto& t : terms) {
    generate_z(t.key, Distribution::Gaussian, offset, offset + n, z.data());
    for (int64_t i = 0; i < n; ++i) exact_theta[size_t(i)] -= double(t.coeff) * z[size_t(i)];
  }
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(fused[size_t(i)] - exact_theta[size_t(i)]));
  EXPECT_LT(worst, 1e-5);
}

// A shard updated alone gets the same bits as the same indices of the whole,
// and several tensors at their global offsets equal one contiguous θ.
TEST(Apply, SlicesAndTensorListsEqualTheWhole) {
  const int64_t n = 30000;
  const auto theta0 = make_theta(n, 4);
  const auto terms = make_terms(5, 11, 1e-2f);
  for (Distribution d : kBoth) {
    auto whole = theta0;
    apply_perturbations(terms, d, 0, n, whole.data(), 0.99f);

    auto pieces = theta0;
    const int64_t cuts[] = {0, 1, 129, 2047, 2049, 17001, n};
    for (int c = 0; c + 1 < 7; ++c)
      apply_perturbations(terms, d, cuts[c], cuts[c + 1] - cuts[c], pieces.data() + cuts[c], 0.99f, 1);
    EXPECT_EQ(bit_mismatches(whole, pieces), 0) << distribution_name(d);

    std::vector<float> a(theta0.begin(), theta0.begin() + 1001), b(theta0.begin() + 1001, theta0.begin() + 20000),
        c(theta0.begin() + 20000, theta0.end());
    const TrainableSpan spans[] = {{b.data(), int64_t(b.size()), 1001}, {a.data(), int64_t(a.size()), 0},
                                   {c.data(), int64_t(c.size()), 20000}};
    apply_perturbations(terms, d, spans, 0.99f, 2);
    std::vector<float> joined(a);
    joined.insert(joined.end(), b.begin(), b.end());
    joined.insert(joined.end(), c.begin(), c.end());
    EXPECT_EQ(bit_mismatches(whole, joined), 0) << distribution_name(d);
  }
}

TEST(Apply, NoTermsOnlyDecays) {
  std::vector<float> theta = {1.0f, -2.0f, 0.5f};
  apply_perturbations({}, Distribution::Gaussian, 0, 3, theta.data(), 0.5f);
  EXPECT_EQ(theta, (std::vector<float>{0.5f, -1.0f, 0.25f}));
}

TEST(Apply, RejectsBadRanges) {
  std::vector<float> theta(4);
  const auto terms = make_terms(1, 0, 1.0f);
  EXPECT_THROW(apply_perturbations(terms, Distribution::Rademacher, 0, -1, theta.data()), Error);
  EXPECT_THROW(apply_perturbations(terms, Distribution::Gaussian, max_stream_elements(Distribution::Gaussian) - 2, 4,
                                   theta.data()),
               Error);
  EXPECT_THROW(apply_perturbations(terms, Distribution::Rademacher, 0, 4, nullptr), Error);
}

}  // namespace
}  // namespace zeroth
