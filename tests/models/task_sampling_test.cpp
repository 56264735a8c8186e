// Split drawing: our own Fisher–Yates over mt19937_64 (fixed by the standard),
// determinism in data_seed, class balance, disjoint splits, MeZO's protocol.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "core/error.h"
#include "models/tasks/sampling.h"

namespace zeroth {
namespace {

std::vector<int32_t> labels_of(int64_t n, int32_t classes) {
  std::vector<int32_t> l(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) l[size_t(i)] = int32_t((i * 7 + i / 3) % classes);
  return l;
}

std::vector<int64_t> class_counts(const std::vector<int64_t>& rows, const std::vector<int32_t>& labels, int classes) {
  std::vector<int64_t> c(static_cast<size_t>(classes), 0);
  for (int64_t r : rows) ++c[size_t(labels[size_t(r)])];
  return c;
}

TEST(DataRng, IsMt19937_64WithAnUnbiasedBoundedDraw) {
  // The standard fixes mt19937_64's 10000th output for the default seed.
  DataRng def(5489);
  uint64_t x = 0;
  for (int i = 0; i < 10000; ++i) x = def.next();
  EXPECT_EQ(x, 9981545732273789042ull);
  // below(n) = next() % n whenever next() is under the rejection limit
  // (always, in practice, for small n): a known answer, not just "some value".
  DataRng a(42), b(42);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.below(10), b.next() % 10);
  // Every residue appears, roughly evenly.
  std::vector<int> hist(6, 0);
  DataRng c(1);
  for (int i = 0; i < 6000; ++i) ++hist[c.below(6)];
  for (int h : hist) EXPECT_NEAR(h, 1000, 150);
}

TEST(DataRng, ShuffleIsAPermutationFixedBySeed) {
  const auto a = shuffled_indices(1000, 7), b = shuffled_indices(1000, 7), c = shuffled_indices(1000, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  // Fisher–Yates from the back, spelled out: the last slot swaps with below(n).
  DataRng rng(7);
  std::vector<int64_t> manual(1000);
  std::iota(manual.begin(), manual.end(), 0);
  for (size_t i = manual.size(); i > 1; --i) std::swap(manual[i - 1], manual[rng.below(i)]);
  EXPECT_EQ(manual, a);
}

TEST(DrawSplits, KShotIsClassBalancedDisjointAndDeterministic) {
  const auto labels = labels_of(500, 3);
  SamplingPlan plan;
  plan.k_shot = 16;
  plan.classes = 3;
  plan.data_seed = 13;
  const auto d = draw_splits(plan, labels, 500, -1, -1);
  EXPECT_EQ(class_counts(d.train.rows, labels, 3), (std::vector<int64_t>{16, 16, 16}));
  EXPECT_EQ(class_counts(d.dev.rows, labels, 3), (std::vector<int64_t>{16, 16, 16}));  // default: k per class
  EXPECT_TRUE(d.test.rows.empty());
  std::set<int64_t> all(d.train.rows.begin(), d.train.rows.end());
  all.insert(d.dev.rows.begin(), d.dev.rows.end());
  EXPECT_EQ(all.size(), 96u);
  // Same seed, same rows in the same order; another seed, other rows.
  const auto again = draw_splits(plan, labels, 500, -1, -1);
  EXPECT_EQ(again.train.rows, d.train.rows);
  EXPECT_EQ(again.dev.rows, d.dev.rows);
  plan.data_seed = 14;
  EXPECT_NE(draw_splits(plan, labels, 500, -1, -1).train.rows, d.train.rows);
  // Explicit sizes: dev of 10 over 3 classes is 4/3/3; carved test balanced too.
  plan.dev_size = 10;
  plan.test_size = 6;
  const auto sized = draw_splits(plan, labels, 500, -1, -1);
  EXPECT_EQ(class_counts(sized.dev.rows, labels, 3), (std::vector<int64_t>{4, 3, 3}));
  EXPECT_EQ(class_counts(sized.test.rows, labels, 3), (std::vector<int64_t>{2, 2, 2}));
}

TEST(DrawSplits, TrainFirstThenDevInShuffleOrder) {
  // Without classes: train = the first train_size rows of the shuffle, dev the next.
  SamplingPlan plan;
  plan.train_size = 30;
  plan.dev_size = 20;
  plan.data_seed = 3;
  const auto order = shuffled_indices(100, 3);
  const auto d = draw_splits(plan, {}, 100, -1, -1);
  EXPECT_EQ(d.train.rows, std::vector<int64_t>(order.begin(), order.begin() + 30));
  EXPECT_EQ(d.dev.rows, std::vector<int64_t>(order.begin() + 30, order.begin() + 50));
  // "All" train takes what carved dev/test leave, so nothing is lost or shared.
  plan.train_size = 0;
  plan.test_size = 10;
  const auto rest = draw_splits(plan, {}, 100, -1, -1);
  EXPECT_EQ(rest.dev.rows, std::vector<int64_t>(order.begin(), order.begin() + 20));
  EXPECT_EQ(rest.test.rows, std::vector<int64_t>(order.begin() + 20, order.begin() + 30));
  EXPECT_EQ(rest.train.rows, std::vector<int64_t>(order.begin() + 30, order.end()));
}

TEST(DrawSplits, FilesServeAsDevAndTestLikeGlue) {
  SamplingPlan plan;
  plan.train_size = 5;
  // dev_path only: it is the test split (GLUE's labelled dev), dev is carved.
  auto d = draw_splits(plan, {}, 50, 40, -1);
  EXPECT_EQ(d.test.pool, 1);
  EXPECT_EQ(d.test.rows.size(), 40u);
  EXPECT_EQ(d.test.rows[3], 3);  // file order without a cap
  EXPECT_EQ(d.dev.pool, 0);
  EXPECT_TRUE(d.dev.rows.empty());
  // dev_path and test_path: each from its own file; caps sample with the seed.
  plan.dev_size = 7;
  plan.test_size = 9;
  d = draw_splits(plan, {}, 50, 40, 30);
  EXPECT_EQ(d.dev.pool, 1);
  EXPECT_EQ(d.test.pool, 2);
  EXPECT_EQ(d.dev.rows.size(), 7u);
  EXPECT_EQ(d.test.rows.size(), 9u);
  EXPECT_EQ(std::set<int64_t>(d.test.rows.begin(), d.test.rows.end()).size(), 9u);
  EXPECT_EQ(draw_splits(plan, {}, 50, 40, 30).test.rows, d.test.rows);
}

TEST(DrawSplits, AskingForTooManyRowsNamesTheKey) {
  SamplingPlan plan;
  plan.k_shot = 10;
  plan.classes = 2;
  std::vector<int32_t> labels(25, 0);
  for (int i = 0; i < 8; ++i) labels[size_t(i)] = 1;  // only 8 of class 1
  try {
    draw_splits(plan, labels, 25, -1, -1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("task.k_shot: class 1"), std::string::npos) << e.what();
  }
  SamplingPlan sized;
  sized.train_size = 20;
  sized.dev_size = 10;
  try {
    draw_splits(sized, {}, 25, -1, -1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("task.dev_size"), std::string::npos) << e.what();
  }
  sized.dev_size = 50;
  EXPECT_THROW(draw_splits(sized, {}, 25, 40, 30), Error);  // cap above the file's rows
}

}  // namespace
}  // namespace zeroth
