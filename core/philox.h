// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as
// 1, 2, 3", SC'11): a counter-based generator. Output block = bijection of a
// 128-bit counter under a 64-bit key, so any block of any stream is computed
// directly from (key, counter) with no state: z for parameter i is random-access.
//
// This is the same function as Random123's philox4x32 with 10 rounds and cuRAND's
// CURAND_RNG_PSEUDO_PHILOX4_32_10 (tests/core/philox_test.cpp checks both).
// Header-only and ZEROTH_HD so CPU and CUDA code compute the identical function.
#pragma once
#include <cstdint>

#include "core/hostdevice.h"

namespace zeroth {

// Four 32-bit words: a counter going in, or one output block (128 random bits).
struct PhiloxBlock {
  uint32_t w[4];
};

// The two 32-bit key words, e.g. a 64-bit seed split low/high.
struct PhiloxKey {
  uint32_t k[2];
};

namespace philox {
// Round multipliers and Weyl key increments of Philox4x32 (from the paper).
constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kW1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kRounds = 10;

ZEROTH_HD uint32_t mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return uint32_t((uint64_t(a) * uint64_t(b)) >> 32);
#endif
}

// One S-P round: two 32x32->64 multiplies, the high halves xor'ed with the other
// two words and the key, the words permuted.
ZEROTH_HD PhiloxBlock round(PhiloxBlock c, PhiloxKey k) {
  const uint32_t hi0 = mulhi(kM0, c.w[0]), lo0 = kM0 * c.w[0];
  const uint32_t hi1 = mulhi(kM1, c.w[2]), lo1 = kM1 * c.w[2];
  return PhiloxBlock{{hi1 ^ c.w[1] ^ k.k[0], lo1, hi0 ^ c.w[3] ^ k.k[1], lo0}};
}
}  // namespace philox

// Philox4x32-10 of `counter` under `key`.
ZEROTH_HD PhiloxBlock philox4x32_10(PhiloxBlock counter, PhiloxKey key) {
  PhiloxBlock c = counter;
  for (int r = 0; r < philox::kRounds; ++r) {
    if (r > 0) {  // the key is bumped between rounds, not before the first
      key.k[0] += philox::kW0;
      key.k[1] += philox::kW1;
    }
    c = philox::round(c, key);
  }
  return c;
}

// A 64-bit seed as a Philox key, low word first (cuRAND's convention too).
ZEROTH_HD PhiloxKey philox_key(uint64_t seed) {
  return PhiloxKey{{uint32_t(seed), uint32_t(seed >> 32)}};
}

}  // namespace zeroth
