#include "optim/directions.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace zeroth {

namespace {

// The factors' streams: z's own key with the run seed salted apart per factor,
// so no factor element shares a Philox counter with an ordinary z element.
constexpr uint64_t kSaltU = 0x4c4f5a4f2d55ull, kSaltV = 0x4c4f5a4f2d56ull;  // "LOZO-U", "LOZO-V"

}  // namespace

void Directions::validate() const {
  ZEROTH_CHECK(lozo_rank >= 0 && lozo_rank <= 256, "zo.lozo_rank must be in 0..256 (0 = full-rank perturbations), got {}",
               lozo_rank);
  ZEROTH_CHECK(lozo_period >= 1, "zo.lozo_period must be >= 1 (steps the subspace is kept), got {}", lozo_period);
  ZEROTH_CHECK(!(low_rank() && orthogonal_slots), "zo.orthogonal_slots with zo.lozo_rank: the slots' sign patterns "
               "would break the low rank of each direction; use one of them");
}

std::pair<PerturbationKey, PerturbationKey> low_rank_factor_keys(const PerturbationKey& key, const Directions& d) {
  return {PerturbationKey{key.run_seed ^ kSaltU, key.step, key.member, key.slot},
          PerturbationKey{key.run_seed ^ kSaltV, uint32_t(key.step / uint32_t(d.lozo_period)), key.member, key.slot}};
}

bool low_rank_applies(const TrainableTensor& t, const Directions& d) {
  return d.low_rank() && t.shape.size() == 2 && t.shape[0] > d.lozo_rank && t.shape[1] > d.lozo_rank;
}

void low_rank_z(const PerturbationKey& key, Distribution dist, const Directions& d, const TrainableTensor& t,
                int64_t row_begin, int64_t row_end, float* out) {
  ZEROTH_CHECK(low_rank_applies(t, d), "low_rank_z: {} {} takes no rank-{} perturbation", t.name,
               shape_str(t.shape), d.lozo_rank);
  const int64_t cols = t.shape[1], r = d.lozo_rank;
  ZEROTH_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= t.shape[0], "low_rank_z: rows [{}, {}) of {}",
               row_begin, row_end, t.name);
  // U's rows row_begin.. and all of V, at indices inside the tensor's own range
  // (r·rows <= rows·cols and r·cols <= rows·cols), so tensors never share them.
  const auto [ku, kv] = low_rank_factor_keys(key, d);
  std::vector<float> u(size_t((row_end - row_begin) * r)), v(size_t(cols * r));
  generate_z(ku, dist, t.offset + row_begin * r, t.offset + row_end * r, u.data());
  generate_z(kv, dist, t.offset, t.offset + cols * r, v.data());
  const float inv = float(1.0 / std::sqrt(double(r)));
  for (int64_t i = row_begin; i < row_end; ++i) {
    const float* ui = u.data() + (i - row_begin) * r;
    float* o = out + (i - row_begin) * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const float* vc = v.data() + c * r;
      float s = 0.0f;
      for (int64_t j = 0; j < r; ++j) s = s + ui[j] * vc[j];
      o[c] = s * inv;
    }
  }
}

void perturbation_z(const TrainableSet& theta, const PerturbationKey& key, Distribution dist, const Directions& d,
                    int64_t begin, int64_t end, float* out) {
  if (d.orthogonal_slots) {
    // The member's base direction (its slot 0) with slot s's Walsh–Hadamard signs.
    generate_z(PerturbationKey{key.run_seed, key.step, key.member, 0}, dist, begin, end, out);
    if (key.slot == 0) return;
    for (int64_t i = begin; i < end; ++i)
      if (std::popcount(uint64_t(key.slot) & uint64_t(i)) & 1) out[i - begin] = -out[i - begin];
    return;
  }
  if (!d.low_rank()) return generate_z(key, dist, begin, end, out);
  for (int64_t at = begin; at < end;) {
    const TrainableTensor* t = theta.at_index(at);
    ZEROTH_CHECK(t != nullptr, "perturbation_z: index {} is outside θ's {} elements", at, theta.size());
    const int64_t stop = std::min(end, t->offset + t->n);
    if (low_rank_applies(*t, d)) {
      const int64_t cols = t->shape[1];
      ZEROTH_CHECK((at - t->offset) % cols == 0 && ((stop - t->offset) % cols == 0),
                   "perturbation_z: [{}, {}) cuts rows of {}", at, stop, t->name);
      low_rank_z(key, dist, d, *t, (at - t->offset) / cols, (stop - t->offset) / cols, out + (at - begin));
    } else {
      generate_z(key, dist, at, stop, out + (at - begin));
    }
    at = stop;
  }
}

}  // namespace zeroth
