// LISA's layerwise importance sampling for zeroth-order steps: at every step
// only `per_step` of the model's n layers are perturbed and updated, drawn
// uniformly without replacement from a stream keyed by (run seed, step), so
// every member, replica and replay draws the same layers. Tensors outside the
// layers (the final norm, a trained embedding or output layer) always take
// part. A member's perturbation is zero outside the step's layers, so its
// projected gradient and the step both concern those layers alone.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "optim/trainable.h"

namespace zeroth {

// The layer a trainable tensor belongs to ("layers.{l}.…"), or -1 for the
// tensors outside the layers.
int tensor_layer(const std::string& name);
// 1 + the largest layer index among the set's tensors (0 when none is in a layer).
int layer_count(const TrainableSet& set);

// active[l] = 1 when layer l takes part in `step`: `per_step` of `n_layers`
// layers (all of them when per_step is 0 or >= n_layers). The draw is a
// partial Fisher–Yates over std::mt19937_64 (fixed by the C++ standard) seeded
// from (run_seed, step), with an unbiased bounded draw: the same on every machine.
std::vector<uint8_t> sampled_layers(uint64_t run_seed, uint64_t step, int n_layers, int per_step);

}  // namespace zeroth
