// CPU generation of perturbation streams (core/perturb.h): the scalar reference,
// one Philox block at a time, and the fast path, eight blocks at a time through
// core/cpu/rng_simd.h. Both produce z[i] as a function of i alone, which is what
// makes any slice equal the same slice of the whole.
#include "core/perturb.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/cpu/rng_simd.h"
#include "core/error.h"

namespace zeroth {

const char* distribution_name(Distribution d) {
  return d == Distribution::Rademacher ? "rademacher" : "gaussian";
}

void check_z_range(Distribution d, int64_t begin, int64_t end, const char* who) {
  ZEROTH_CHECK(begin >= 0 && begin <= end, "{}: element range [{}, {}) is reversed or negative", who, begin,
               end);
  ZEROTH_CHECK(end <= max_stream_elements(d),
               "{}: element range [{}, {}) exceeds the {} stream's index space of {} elements "
               "(one 32-bit Philox block counter); split the trainable set across keys",
               who, begin, end, distribution_name(d), max_stream_elements(d));
}

void generate_z_reference(const PerturbationKey& key, Distribution d, int64_t begin, int64_t end, float* out) {
  check_z_range(d, begin, end, "generate_z_reference");
  const int64_t per_block = elements_per_block(d);
  for (int64_t i = begin; i < end;) {
    const int64_t block = i / per_block;
    const int64_t stop = std::min(end, (block + 1) * per_block);
    const PhiloxBlock b = perturbation_block(key, uint32_t(block));
    if (d == Distribution::Rademacher) {
      for (; i < stop; ++i)
        out[i - begin] = exact::from_bits(0x3F800000u | rademacher_sign(b, int(i - block * per_block)));
    } else {
      float z[4];
      gaussian_quad(b, z);
      for (; i < stop; ++i) out[i - begin] = z[i - block * per_block];
    }
  }
}

void generate_z(const PerturbationKey& key, Distribution d, int64_t begin, int64_t end, float* out) {
  check_z_range(d, begin, end, "generate_z");
  // Groups of 8 Philox blocks aligned to multiples of 8 blocks: 1024 Rademacher
  // or 32 Gaussian elements. Whole groups go straight to `out`; the partial
  // groups at either end go through `group` and are copied.
  const int64_t per_block = elements_per_block(d);
  const int64_t per_group = 8 * per_block;
  alignas(32) float group[1024];
  alignas(32) uint32_t words[32];
  for (int64_t i = begin; i < end;) {
    const int64_t g0 = i / per_group * per_group;
    const int64_t stop = std::min(end, g0 + per_group);
    const bool whole = i == g0 && stop == g0 + per_group;
    float* dst = whole ? out + (i - begin) : group;
    const uint32_t first = uint32_t(g0 / per_block);
    if (d == Distribution::Rademacher) {
      cpu::philox_blocks8(key, first, words);
      cpu::rademacher_expand(words, 32, dst);
    } else {
      cpu::gaussian_blocks8(key, first, dst);
    }
    if (!whole) std::memcpy(out + (i - begin), group + (i - g0), size_t(stop - i) * sizeof(float));
    i = stop;
  }
}

}  // namespace zeroth
