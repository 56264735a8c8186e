// SIMD kernels behind core/perturb.h and core/apply.h (core/cpu/rng_simd.cpp).
// Each one is AVX2 where the build targets it and a scalar loop otherwise; both
// perform the same IEEE operations in the same order as the scalar reference
// (core/perturb.h z_at, core/exact_normal.h), so results are bit-identical.
#pragma once
#include <cstdint>

#include "core/perturb.h"

namespace zeroth::cpu {

// True when rng_simd.cpp was compiled with AVX2 (reported by tests and benchmarks).
bool rng_simd_is_avx2();

// Philox output blocks first .. first+7 of a key's stream (the block counter
// wraps mod 2^32), block-major: words[4*j + w] = word w of block first+j.
void philox_blocks8(const PerturbationKey& key, uint32_t first, uint32_t words[32]);

// z[4*first, 4*first + 32) of the key's Gaussian stream.
void gaussian_blocks8(const PerturbationKey& key, uint32_t first, float z[32]);

// Rademacher signs to floats: out[t] = +-1 from bit t of words (t in [0, 32*nwords)).
void rademacher_expand(const uint32_t* words, int64_t nwords, float* out);

// acc[t] = acc[t] + (c * z[t]) for t in [0, 32*nwords), z = the Rademacher signs of
// `words` (c * +-1 is c with its sign bit flipped: exact, no multiply needed).
void rademacher_accumulate(const uint32_t* words, int64_t nwords, float c, float* acc);

// acc[t] = acc[t] + (c * z[t]): a multiply then an add, never a fused FMA.
void accumulate_scaled(const float* z, int64_t n, float c, float* acc);

// theta[t] = theta[t] * decay - acc[t] (multiply, then subtract; never fused).
void decay_subtract(float* theta, const float* acc, int64_t n, float decay);

}  // namespace zeroth::cpu
