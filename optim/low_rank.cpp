#include "optim/low_rank.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace zeroth {

namespace {

// The factors' streams: z's own key with the run seed salted apart per factor,
// so no factor element shares a Philox counter with an ordinary z element.
constexpr uint64_t kSaltU = 0x4c4f5a4f2d55ull, kSaltV = 0x4c4f5a4f2d56ull;  // "LOZO-U", "LOZO-V"

}  // namespace

void LowRank::validate() const {
  ZEROTH_CHECK(rank >= 0 && rank <= 256, "zo.lozo_rank must be in 0..256 (0 = ordinary perturbations), got {}", rank);
  ZEROTH_CHECK(period >= 1, "zo.lozo_period must be >= 1 (steps the subspace is kept), got {}", period);
}

std::pair<PerturbationKey, PerturbationKey> low_rank_factor_keys(const PerturbationKey& key, const LowRank& lr) {
  return {PerturbationKey{key.run_seed ^ kSaltU, key.step, key.member, key.slot},
          PerturbationKey{key.run_seed ^ kSaltV, uint32_t(key.step / uint32_t(lr.period)), key.member, key.slot}};
}

bool low_rank_applies(const TrainableTensor& t, const LowRank& lr) {
  return lr.on() && t.shape.size() == 2 && t.shape[0] > lr.rank && t.shape[1] > lr.rank;
}

void low_rank_z(const PerturbationKey& key, Distribution d, const LowRank& lr, const TrainableTensor& t,
                int64_t row_begin, int64_t row_end, float* out) {
  ZEROTH_CHECK(low_rank_applies(t, lr), "low_rank_z: {} {} takes no rank-{} perturbation", t.name,
               shape_str(t.shape), lr.rank);
  const int64_t cols = t.shape[1], r = lr.rank;
  ZEROTH_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= t.shape[0], "low_rank_z: rows [{}, {}) of {}",
               row_begin, row_end, t.name);
  // U's rows row_begin.. and all of V, at indices inside the tensor's own range
  // (r·rows <= rows·cols and r·cols <= rows·cols), so tensors never share them.
  const auto [ku, kv] = low_rank_factor_keys(key, lr);
  std::vector<float> u(size_t((row_end - row_begin) * r)), v(size_t(cols * r));
  generate_z(ku, d, t.offset + row_begin * r, t.offset + row_end * r, u.data());
  generate_z(kv, d, t.offset, t.offset + cols * r, v.data());
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

void perturbation_z(const TrainableSet& theta, const PerturbationKey& key, Distribution d, const LowRank& lr,
                    int64_t begin, int64_t end, float* out) {
  if (!lr.on()) return generate_z(key, d, begin, end, out);
  for (int64_t at = begin; at < end;) {
    const TrainableTensor* t = theta.at_index(at);
    ZEROTH_CHECK(t != nullptr, "perturbation_z: index {} is outside θ's {} elements", at, theta.size());
    const int64_t stop = std::min(end, t->offset + t->n);
    if (low_rank_applies(*t, lr)) {
      const int64_t cols = t->shape[1];
      ZEROTH_CHECK((at - t->offset) % cols == 0 && ((stop - t->offset) % cols == 0),
                   "perturbation_z: [{}, {}) cuts rows of {}", at, stop, t->name);
      low_rank_z(key, d, lr, *t, (at - t->offset) / cols, (stop - t->offset) / cols, out + (at - begin));
    } else {
      generate_z(key, d, at, stop, out + (at - begin));
    }
    at = stop;
  }
}

}  // namespace zeroth
