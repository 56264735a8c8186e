// The shape of a step's perturbation directions beyond plain z (zo.*):
//
// LOZO / SubZero's low-rank perturbations (zo.lozo_rank r > 0): for a matrix of
// θ (rows × cols, a LoRA factor or a full weight) the direction is
//   z = U·Vᵀ / √r,   U (rows × r) new every step, V (cols × r) every lozo_period steps
// instead of rows·cols independent values. Both factors come from the run's
// distribution on their own Philox streams, keyed like z itself by (run seed,
// step, member, slot), V by step / period, so every member, replica and replay
// regenerates the same z. Vectors (norms) and matrices whose smaller side is at
// most r keep the ordinary z. Every element of z is a sum of r products in a
// fixed order (no FMA): the same bits on every machine.
//
// Orthogonal slots (zo.orthogonal_slots): a member's q slots share one base
// direction b (the z of its slot 0) and differ by Walsh–Hadamard signs,
//   z_s[i] = b[i] · (−1)^popcount(s & i)        (i: the global index)
// so slot 0 keeps its z and, with Rademacher b, z_s·z_t = 0 exactly over any
// aligned block of 2^m indices (s, t < 2^m, s ≠ t): the slots are orthogonal
// directions instead of nearly orthogonal random ones.
#pragma once
#include <cstdint>
#include <utility>

#include "core/perturb.h"
#include "optim/trainable.h"

namespace zeroth {

struct Directions {
  int lozo_rank = 0;              // zo.lozo_rank: r; 0 = full-rank z
  int lozo_period = 10;           // zo.lozo_period: steps V is kept for (the lazily refreshed subspace)
  bool orthogonal_slots = false;  // zo.orthogonal_slots
  bool low_rank() const { return lozo_rank > 0; }
  bool plain() const { return !low_rank() && !orthogonal_slots; }  // generate_z's z everywhere
  void validate() const;  // throws zeroth::Error naming the key
};

// The Philox keys of U's and V's streams for z's key: its run seed salted per
// factor (so no factor element shares a counter with an ordinary z element),
// V's step = step / period. U's row i, column j sits at index offset + i·r + j of
// its stream, V's row c at offset + c·r + j (inside the tensor's own range).
std::pair<PerturbationKey, PerturbationKey> low_rank_factor_keys(const PerturbationKey& key, const Directions& d);

// True where tensor `t` takes a low-rank z under `d`.
bool low_rank_applies(const TrainableTensor& t, const Directions& d);

// z of rows [row_begin, row_end) of matrix `t` (row-major, cols = t.shape[1])
// under `key`, into out[(row_begin..row_end) × cols]; low_rank_applies(t, d) must hold.
void low_rank_z(const PerturbationKey& key, Distribution dist, const Directions& d, const TrainableTensor& t,
                int64_t row_begin, int64_t row_end, float* out);

// z over global indices [begin, end) of θ as `d` shapes it: low-rank where it
// applies (the range must then cover whole rows of each matrix it touches:
// whole tensors, or rows of one, as the embedding lookup asks), with the
// orthogonal slots' signs, else generate_z's values.
void perturbation_z(const TrainableSet& theta, const PerturbationKey& key, Distribution dist, const Directions& d,
                    int64_t begin, int64_t end, float* out);

}  // namespace zeroth
