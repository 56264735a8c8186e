#include "core/quant/budget.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace zeroth {

BudgetSolution allocate_budget(const std::vector<std::vector<BudgetOption>>& items, int64_t budget_bits,
                               int64_t max_units) {
  ZEROTH_CHECK(budget_bits >= 0 && max_units > 0, "budget allocation: budget {} bits, max_units {}", budget_bits,
               max_units);
  int64_t cheapest = 0;
  std::vector<int64_t> base(items.size());  // each item's cheapest option
  for (size_t i = 0; i < items.size(); ++i) {
    ZEROTH_CHECK(!items[i].empty(), "budget allocation: item {} has no configuration to choose from", i);
    int64_t c = std::numeric_limits<int64_t>::max();
    for (const auto& o : items[i]) {
      ZEROTH_CHECK(o.bits >= 0 && std::isfinite(o.error), "budget allocation: item {} has an option of {} bits and "
                   "error {}", i, o.bits, o.error);
      c = std::min(c, o.bits);
    }
    base[i] = c;
    cheapest += c;
  }
  ZEROTH_CHECK(cheapest <= budget_bits, "budget allocation: the budget of {} bits is below the cheapest "
               "configuration of every matrix ({} bits); raise the budget to at least that", budget_bits, cheapest);

  // The DP runs over the slack above every item's cheapest option, so the
  // all-cheapest choice always fits and the units are as fine as they can be.
  BudgetSolution sol;
  const int64_t slack = budget_bits - cheapest;
  sol.unit = std::max<int64_t>(1, (slack + max_units - 1) / max_units);
  const int64_t cap = slack / sol.unit;
  size_t cur = 0;  // the item whose options `units` measures
  auto units = [&](int64_t bits) { return (bits - base[cur] + sol.unit - 1) / sol.unit; };

  // Per item, the options that are not dominated (cheaper in units and no worse).
  std::vector<std::vector<int>> keep(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    cur = i;
    std::vector<int> idx(items[i].size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
      const int64_t ua = units(items[i][size_t(a)].bits), ub = units(items[i][size_t(b)].bits);
      return ua != ub ? ua < ub : items[i][size_t(a)].error < items[i][size_t(b)].error;
    });
    double best = INFINITY;
    for (int j : idx)
      if (items[i][size_t(j)].error < best) {
        best = items[i][size_t(j)].error;
        keep[i].push_back(j);
      }
  }

  // dp[c] = least error of the items so far within c units; pick[i][c] its option.
  const double inf = INFINITY;
  std::vector<double> dp(size_t(cap + 1), 0.0), next(size_t(cap + 1));
  std::vector<std::vector<int16_t>> pick(items.size(), std::vector<int16_t>(size_t(cap + 1), -1));
  for (size_t i = 0; i < items.size(); ++i) {
    cur = i;
    std::fill(next.begin(), next.end(), inf);
    for (int j : keep[i]) {
      const int64_t u = units(items[i][size_t(j)].bits);
      const double e = items[i][size_t(j)].error;
      for (int64_t c = u; c <= cap; ++c) {
        const double v = dp[size_t(c - u)] + e;
        if (v < next[size_t(c)]) {
          next[size_t(c)] = v;
          pick[i][size_t(c)] = int16_t(j);
        }
      }
    }
    dp.swap(next);
  }
  sol.choice.assign(items.size(), -1);
  int64_t c = cap;
  for (size_t i = items.size(); i-- > 0;) {
    cur = i;
    const int j = pick[i][size_t(c)];
    sol.choice[i] = j;
    sol.error += items[i][size_t(j)].error;
    sol.bits += items[i][size_t(j)].bits;
    c -= units(items[i][size_t(j)].bits);
  }
  return sol;
}

}  // namespace zeroth
