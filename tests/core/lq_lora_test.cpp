// LQ-LoRA's decomposition (randomized SVD, alternating Q / L1·L2, the stopping
// rule, weighting) and the exact bit-budget allocator against brute force.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/quant/budget.h"
#include "core/quant/lq_decompose.h"
#include "core/quant/nfk.h"
#include "tests/core/lq_test_util.h"
#include "tests/core/quant_test_util.h"

using namespace zeroth;

namespace {

// W (m, n) = U·V (rank r, entries ~ scale) + N(0, noise²).
std::vector<float> low_rank_plus_noise(int64_t m, int64_t n, int64_t r, float scale, float noise, uint32_t seed) {
  const auto u = test::normal_values(size_t(m * r), seed, scale);
  const auto v = test::normal_values(size_t(r * n), seed + 1, 1.0f / std::sqrt(float(r)));
  const auto e = test::normal_values(size_t(m * n), seed + 2, noise);
  std::vector<float> w(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < r; ++k) s += double(u[size_t(i * r + k)]) * double(v[size_t(k * n + j)]);
      w[size_t(i * n + j)] = float(s) + e[size_t(i * n + j)];
    }
  return w;
}

}  // namespace

TEST(RandomizedSvd, RecoversAnExactLowRankMatrix) {
  const int64_t m = 96, n = 160, r = 6;
  const auto w = low_rank_plus_noise(m, n, r, 1.0f, 0.0f, 1);
  const LowRank lr = randomized_svd(w.data(), m, n, r, 8, 2, 7);
  double err = 0, norm = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < r; ++k) s += double(lr.u[size_t(i * r + k)]) * lr.s[size_t(k)] * lr.v[size_t(j * r + k)];
      err += (s - w[size_t(i * n + j)]) * (s - w[size_t(i * n + j)]);
      norm += double(w[size_t(i * n + j)]) * w[size_t(i * n + j)];
    }
  EXPECT_LT(err / norm, 1e-9);
  EXPECT_TRUE(std::is_sorted(lr.s.rbegin(), lr.s.rend()));
  EXPECT_THROW(randomized_svd(w.data(), m, n, 97, 8, 2, 7), Error);
}

// The headline property: on low-rank-plus-noise matrices Q + L1·L2 is far
// closer than plain quantization at the same format, and the stopping rule
// returns the best iterate with the errors falling until the last.
TEST(LqDecompose, BeatsPlainQuantizationOnLowRankPlusNoise) {
  const int64_t m = 128, n = 256, r = 8;
  const auto w = low_rank_plus_noise(m, n, r, 0.5f, 0.01f, 3);
  for (const char* name : {"nf2_b64", "nf3_b64", "nf4_b32_f16"}) {
    const DType t = *parse_dtype(name);
    LqOptions o;
    o.rank = r;
    const LqResult lq = lq_decompose(w.data(), m, n, t, o);
    o.rank = 0;
    const LqResult plain = lq_decompose(w.data(), m, n, t, o);
    EXPECT_LT(lq.error, 0.2 * plain.error) << name;
    EXPECT_NEAR(lq.error, test::residual2(w, lq, m, n, r), 1e-6 * lq.norm2) << name;
    EXPECT_NEAR(plain.error, test::residual2(w, plain, m, n, 0), 1e-6 * plain.norm2) << name;
    ASSERT_GE(lq.errors.size(), 2u) << name;
    for (size_t i = 1; i + 1 < lq.errors.size(); ++i) EXPECT_LT(lq.errors[i], lq.errors[i - 1]) << name << " iter " << i;
    EXPECT_EQ(lq.error, *std::min_element(lq.errors.begin(), lq.errors.end())) << name;
    EXPECT_LE(int(lq.errors.size()), o.max_iters);
    // The factors are stored in bf16: they are bf16 values already.
    for (float v : lq.l1) EXPECT_EQ(v, bf16_to_f32(f32_to_bf16(v)));
  }
}

// Weighting by row/column importance lowers the weighted error (what the
// Fisher variant optimizes) compared with the unweighted decomposition.
TEST(LqDecompose, WeightedDecompositionLowersTheWeightedError) {
  const int64_t m = 64, n = 128, r = 4;
  const auto w = low_rank_plus_noise(m, n, 12, 0.5f, 0.05f, 5);
  std::vector<float> rw(static_cast<size_t>(m)), cw(static_cast<size_t>(n));
  std::mt19937 rng(1);
  for (auto& x : rw) x = std::exp(3.0f * std::uniform_real_distribution<float>(-1, 1)(rng));
  for (auto& x : cw) x = std::exp(3.0f * std::uniform_real_distribution<float>(-1, 1)(rng));
  const DType t = *parse_dtype("nf3_b32");
  LqOptions o;
  o.rank = r;
  const LqResult plain = lq_decompose(w.data(), m, n, t, o);
  o.row_weights = rw;
  o.col_weights = cw;
  const LqResult weighted = lq_decompose(w.data(), m, n, t, o);
  EXPECT_NEAR(weighted.error, test::residual2(w, weighted, m, n, r, rw, cw), 1e-6 * weighted.norm2);
  EXPECT_LT(weighted.error, 0.9 * test::residual2(w, plain, m, n, r, rw, cw));
  o.row_weights.assign(size_t(m - 1), 1.0f);
  EXPECT_THROW(lq_decompose(w.data(), m, n, t, o), Error);
}

TEST(LqDecompose, RejectsBadRankAndShapes) {
  const auto w = low_rank_plus_noise(16, 64, 2, 1.0f, 0.1f, 2);
  LqOptions o;
  o.rank = 17;
  EXPECT_THROW(lq_decompose(w.data(), 16, 64, *parse_dtype("nf4_b64"), o), Error);
  o.rank = 2;
  EXPECT_THROW(lq_decompose(w.data(), 32, 32, *parse_dtype("nf4_b64"), o), Error);  // 32 is no multiple of 64
}

// ---- the allocator ------------------------------------------------------------

namespace {

double brute_force(const std::vector<std::vector<BudgetOption>>& items, int64_t budget, size_t i = 0, int64_t used = 0) {
  if (i == items.size()) return 0.0;
  double best = INFINITY;
  for (const auto& o : items[i])
    if (used + o.bits <= budget) best = std::min(best, o.error + brute_force(items, budget, i + 1, used + o.bits));
  return best;
}

}  // namespace

TEST(BudgetAllocator, OptimalAgainstBruteForceOnSmallInstances) {
  std::mt19937 rng(11);
  int solved = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const size_t n_items = 1 + rng() % 6, n_opts = 1 + rng() % 5;
    std::vector<std::vector<BudgetOption>> items(n_items);
    int64_t lo = 0, hi = 0;
    for (auto& it : items) {
      int64_t mn = INT64_MAX, mx = 0;
      for (size_t j = 0; j < n_opts; ++j) {
        it.push_back({std::uniform_real_distribution<double>(0, 10)(rng), int64_t(1 + rng() % 40)});
        mn = std::min(mn, it.back().bits);
        mx = std::max(mx, it.back().bits);
      }
      lo += mn;
      hi += mx;
    }
    const int64_t budget = lo + int64_t(rng() % uint32_t(hi - lo + 1));
    const BudgetSolution s = allocate_budget(items, budget);
    ASSERT_EQ(s.unit, 1);
    EXPECT_LE(s.bits, budget);
    EXPECT_NEAR(s.error, brute_force(items, budget), 1e-9) << "trial " << trial;
    double e = 0;
    int64_t b = 0;
    for (size_t i = 0; i < n_items; ++i) {
      e += items[i][size_t(s.choice[i])].error;
      b += items[i][size_t(s.choice[i])].bits;
    }
    EXPECT_EQ(b, s.bits);
    EXPECT_NEAR(e, s.error, 1e-9);
    ++solved;
  }
  EXPECT_EQ(solved, 300);
}

TEST(BudgetAllocator, CoarseUnitsNeverExceedTheBudget) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::vector<BudgetOption>> items(40);
    int64_t lo = 0;
    for (auto& it : items) {
      const int64_t numel = 1000 + rng() % 100000;
      int64_t mn = INT64_MAX;
      for (int bits : {2, 3, 4, 8}) {
        it.push_back({std::pow(4.0, -bits) * double(numel), int64_t(bits) * numel + int64_t(rng() % 999)});
        mn = std::min(mn, it.back().bits);
      }
      lo += mn;
    }
    const int64_t budget = lo + int64_t(rng() % uint32_t(lo));
    const BudgetSolution s = allocate_budget(items, budget, 1000);
    EXPECT_GT(s.unit, 1);
    EXPECT_LE(s.bits, budget);
  }
}

TEST(BudgetAllocator, ABudgetBelowTheCheapestIsAClearError) {
  const std::vector<std::vector<BudgetOption>> items = {{{1.0, 10}, {0.5, 20}}, {{2.0, 5}}};
  EXPECT_NO_THROW(allocate_budget(items, 15));
  try {
    allocate_budget(items, 14);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("15 bits"), std::string::npos) << e.what();
  }
  EXPECT_EQ(allocate_budget(items, 25).choice, (std::vector<int>{1, 0}));
}
