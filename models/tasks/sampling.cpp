#include "models/tasks/sampling.h"

#include <cstdint>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace zeroth {
namespace {

// Takes rows from `order` not yet used: `count` of any class, or per class the
// counts in `per_class` (size = classes). Marks them used; keeps `order`'s order.
std::vector<int64_t> take(const std::vector<int64_t>& order, std::vector<char>& used, const std::vector<int32_t>* labels,
                          int64_t count, std::vector<int64_t> per_class, const char* key) {
  std::vector<int64_t> out;
  for (int64_t i : order) {
    if (used[size_t(i)]) continue;
    if (labels) {
      int64_t& left = per_class[size_t((*labels)[size_t(i)])];
      if (left == 0) continue;
      --left;
    } else if (int64_t(out.size()) == count) {
      break;
    }
    used[size_t(i)] = 1;
    out.push_back(i);
  }
  if (labels) {
    for (size_t c = 0; c < per_class.size(); ++c)
      if (per_class[c] > 0)
        fail("{}: class {} has {} rows too few in the training data (k_shot draws train first, then dev, then test)",
             key, c, per_class[c]);
  } else if (int64_t(out.size()) < count) {
    fail("{} = {} but only {} training rows are left to draw from", key, count, out.size());
  }
  return out;
}

std::vector<int64_t> balanced(int64_t size, int32_t classes) {
  std::vector<int64_t> per(size_t(classes), size / classes);
  for (int64_t c = 0; c < size % classes; ++c) ++per[size_t(c)];
  return per;
}

// A split read from its own file: all rows in file order, or a seeded sample.
SplitSource from_file(int pool, int64_t rows, int64_t cap, uint64_t seed, const char* key) {
  SplitSource s;
  s.pool = pool;
  if (cap <= 0) {
    s.rows.resize(size_t(rows));
    std::iota(s.rows.begin(), s.rows.end(), 0);
    return s;
  }
  if (cap > rows) fail("{} = {} but its file has only {} rows", key, cap, rows);
  // A stream per split, so capping dev does not change which test rows are drawn.
  s.rows = shuffled_indices(rows, seed ^ (0x9E3779B97F4A7C15ull * uint64_t(pool)));
  s.rows.resize(size_t(cap));
  return s;
}

}  // namespace

uint64_t DataRng::below(uint64_t n) {
  ZEROTH_CHECK(n > 0, "DataRng::below(0)");
  // Values at or above `limit` would favour small results; draw again.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x = next();
  while (x >= limit) x = next();
  return x % n;
}

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  DataRng rng(seed);
  rng.shuffle(v);
  return v;
}

DrawnSplits draw_splits(const SamplingPlan& plan, const std::vector<int32_t>& labels, int64_t train_rows,
                        int64_t dev_rows, int64_t test_rows) {
  const bool k_shot = plan.k_shot > 0;
  const std::vector<int32_t>* lab = nullptr;
  if (k_shot) {
    ZEROTH_CHECK(plan.classes > 0, "task.k_shot needs a classification task with label words");
    ZEROTH_CHECK(int64_t(labels.size()) == train_rows, "draw_splits: {} labels for {} rows", labels.size(),
                 train_rows);
    for (int32_t l : labels) ZEROTH_CHECK(l >= 0 && l < plan.classes, "draw_splits: label {} out of range", l);
    lab = &labels;
  }
  const bool test_from_file = test_rows >= 0 || dev_rows >= 0;
  const bool dev_from_file = dev_rows >= 0 && test_rows >= 0;

  DrawnSplits d;
  d.train.pool = 0;
  const std::vector<int64_t> order = shuffled_indices(train_rows, plan.data_seed);
  std::vector<char> used(size_t(train_rows), 0);
  const bool train_all = !k_shot && plan.train_size == 0;
  if (k_shot)
    d.train.rows = take(order, used, lab, 0, std::vector<int64_t>(size_t(plan.classes), plan.k_shot), "task.k_shot");
  else if (!train_all)
    d.train.rows = take(order, used, nullptr, plan.train_size, {}, "task.train_size");

  if (dev_from_file) {
    d.dev = from_file(1, dev_rows, plan.dev_size, plan.data_seed, "task.dev_size");
  } else {
    const int64_t n = plan.dev_size > 0 ? plan.dev_size : (k_shot ? plan.k_shot * plan.classes : 0);
    d.dev.rows = take(order, used, lab, n, k_shot ? balanced(n, plan.classes) : std::vector<int64_t>{},
                      "task.dev_size");
  }
  if (test_from_file) {
    const int pool = test_rows >= 0 ? 2 : 1;
    d.test = from_file(pool, test_rows >= 0 ? test_rows : dev_rows, plan.test_size, plan.data_seed,
                       "task.test_size");
  } else {
    d.test.rows = take(order, used, lab, plan.test_size,
                       k_shot ? balanced(plan.test_size, plan.classes) : std::vector<int64_t>{}, "task.test_size");
  }
  if (train_all) {
    for (int64_t i : order)
      if (!used[size_t(i)]) d.train.rows.push_back(i);
  }
  return d;
}

}  // namespace zeroth
