// The bit-budget allocator of LQ-LoRA: choose one quantization configuration
// per matrix to minimize the total reconstruction error with the total
// storage under a global budget, a multiple-choice knapsack
//   minimize Σ_i e(i, c_i)  subject to  Σ_i bits(i, c_i) ≤ budget.
// Solved exactly by dynamic programming over the slack (budget − Σ cheapest
// options) in units of `unit` bits, each option's extra cost over its item's
// cheapest rounded UP to whole units: the chosen storage never exceeds the
// budget, any budget ≥ Σ cheapest is feasible, and with unit = 1 (slack up to
// max_units bits) the result is the exact optimum (tests check it against
// brute force). A larger slack uses unit = ⌈slack / max_units⌉; the rounding
// then gives up less than one unit of budget per matrix.
#pragma once
#include <cstdint>
#include <vector>

namespace zeroth {

struct BudgetOption {
  double error = 0;  // reconstruction error of this configuration
  int64_t bits = 0;  // its exact storage in bits
};

struct BudgetSolution {
  std::vector<int> choice;  // per item: index into its options
  double error = 0;         // Σ error of the choices
  int64_t bits = 0;         // Σ bits of the choices (≤ budget)
  int64_t unit = 1;         // DP granularity in bits
};

// Throws zeroth::Error naming the least feasible budget when even the cheapest
// option of every item does not fit.
BudgetSolution allocate_budget(const std::vector<std::vector<BudgetOption>>& items, int64_t budget_bits,
                               int64_t max_units = int64_t(1) << 16);

}  // namespace zeroth
