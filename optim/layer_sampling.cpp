#include "optim/layer_sampling.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace zeroth {

int tensor_layer(const std::string& name) {
  if (name.rfind("layers.", 0) != 0) return -1;
  int layer = 0;
  size_t i = 7;
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) layer = layer * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' ? layer : -1;
}

int layer_count(const TrainableSet& set) {
  int n = 0;
  for (const TrainableTensor& t : set.tensors()) n = std::max(n, tensor_layer(t.name) + 1);
  return n;
}

std::vector<uint8_t> sampled_layers(uint64_t run_seed, uint64_t step, int n_layers, int per_step) {
  std::vector<uint8_t> active(size_t(std::max(n_layers, 0)), 1);
  if (per_step <= 0 || per_step >= n_layers) return active;
  // Keyed apart from the perturbation and codec streams: a salted splitmix of (seed, step).
  uint64_t s = run_seed ^ 0x115A1A7E85ull;
  s += 0x9E3779B97F4A7C15ull * (step + 1);
  s = (s ^ (s >> 30)) * 0xBF58476D1CE4E5B9ull;
  s = (s ^ (s >> 27)) * 0x94D049BB133111EBull;
  std::mt19937_64 gen(s ^ (s >> 31));
  auto below = [&](uint64_t n) {  // uniform in [0, n): reject the top partial block
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = gen(); while (x >= limit);
    return x % n;
  };
  std::vector<int> order(static_cast<size_t>(n_layers));
  std::iota(order.begin(), order.end(), 0);
  std::fill(active.begin(), active.end(), 0);
  for (int i = 0; i < per_step; ++i) {
    const size_t j = size_t(i) + size_t(below(uint64_t(n_layers - i)));
    std::swap(order[size_t(i)], order[j]);
    active[size_t(order[size_t(i)])] = 1;
  }
  return active;
}

}  // namespace zeroth
