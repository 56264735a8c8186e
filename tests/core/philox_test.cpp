// Philox4x32-10: Random123's known-answer vectors, cuRAND's host generator as a
// second implementation, and the AVX2 eight-block kernel against the scalar one.
#include <cstdint>
#include <gtest/gtest.h>

#include <vector>

#include "core/cpu/rng_simd.h"
#include "core/perturb.h"
#include "core/philox.h"

#if defined(ZEROTH_HAVE_CUDA)
#include <curand.h>
#endif

namespace zeroth {
namespace {

void expect_block(PhiloxBlock got, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  EXPECT_EQ(got.w[0], a);
  EXPECT_EQ(got.w[1], b);
  EXPECT_EQ(got.w[2], c);
  EXPECT_EQ(got.w[3], d);
}

// Random123 kat_vectors, "philox4x32 10" lines.
TEST(Philox, Random123KnownAnswers) {
  expect_block(philox4x32_10({{0, 0, 0, 0}}, {{0, 0}}), 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8);
  expect_block(philox4x32_10({{~0u, ~0u, ~0u, ~0u}}, {{~0u, ~0u}}), 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
               0x6d5451fd);
  expect_block(philox4x32_10({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, {{0xa4093822, 0x299f31d0}}),
               0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1);
}

TEST(Philox, SeedSplitsLowWordFirst) {
  const PhiloxKey k = philox_key(0x0123456789abcdefull);
  EXPECT_EQ(k.k[0], 0x89abcdefu);
  EXPECT_EQ(k.k[1], 0x01234567u);
}

// The eight-lane kernel (AVX2 when built with it) equals eight scalar calls,
// including where the 32-bit block counter wraps.
TEST(Philox, EightBlockKernelMatchesScalar) {
  const PerturbationKey key{0xfeedfacecafebeefull, 7, 3, 1};
  for (uint32_t first : {0u, 1u, 123456789u, 0xfffffffcu}) {
    uint32_t words[32];
    cpu::philox_blocks8(key, first, words);
    for (uint32_t j = 0; j < 8; ++j) {
      const PhiloxBlock b = perturbation_block(key, first + j);
      for (int w = 0; w < 4; ++w) ASSERT_EQ(words[4 * j + w], b.w[w]) << "first " << first << " block " << j;
    }
  }
  RecordProperty("simd", cpu::rng_simd_is_avx2() ? "avx2" : "scalar");
}

#if defined(ZEROTH_HAVE_CUDA)
// cuRAND's host Philox generator (no GPU needed) lays its stream out as 65,536
// subsequences interleaved block by block: output p (after the generator offset)
// is word p%4 of the block with counter (g / 65536 as 64 bits, g % 65536, 0),
// g = p/4, key = the 64-bit seed split low/high. Found by matching its output;
// it is curand_init(seed, subsequence = g % 65536, offset) per device thread.
uint32_t curand_host_philox(uint64_t seed, uint64_t p) {
  const uint64_t g = p / 4, x = g / 65536;
  const PhiloxBlock b =
      philox4x32_10({{uint32_t(x), uint32_t(x >> 32), uint32_t(g % 65536), 0}}, philox_key(seed));
  return b.w[p % 4];
}

TEST(Philox, MatchesCurandHostGenerator) {
  curandGenerator_t gen = nullptr;
  if (curandCreateGeneratorHost(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
    GTEST_SKIP() << "curandCreateGeneratorHost(PHILOX4_32_10) failed: cuRAND's host generator is unusable here";
  constexpr size_t n = size_t(1) << 20;
  std::vector<uint32_t> got(n);
  for (uint64_t seed : {0ull, 12345ull, 0x0123456789abcdefull}) {
    for (uint64_t offset : {0ull, 1ull, 4ull, 1000003ull, (1ull << 50) + 5}) {
      ASSERT_EQ(curandSetPseudoRandomGeneratorSeed(gen, seed), CURAND_STATUS_SUCCESS);
      ASSERT_EQ(curandSetGeneratorOffset(gen, offset), CURAND_STATUS_SUCCESS);
      ASSERT_EQ(curandGenerate(gen, got.data(), n), CURAND_STATUS_SUCCESS);
      size_t mismatches = 0, first_bad = n;
      for (size_t i = 0; i < n; ++i)
        if (got[i] != curand_host_philox(seed, offset + i)) {
          if (mismatches++ == 0) first_bad = i;
        }
      EXPECT_EQ(mismatches, 0u) << "seed " << seed << " offset " << offset << " first mismatch at " << first_bad;
    }
  }
  // cuRAND's documented first outputs for seed 0, offset 0 (shared/README.md).
  ASSERT_EQ(curandSetPseudoRandomGeneratorSeed(gen, 0), CURAND_STATUS_SUCCESS);
  ASSERT_EQ(curandSetGeneratorOffset(gen, 0), CURAND_STATUS_SUCCESS);
  ASSERT_EQ(curandGenerate(gen, got.data(), 8), CURAND_STATUS_SUCCESS);
  const uint32_t expected[8] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8,
                                0x844515e1, 0xf08d6eaa, 0x0f19c053, 0x83f875f0};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(got[i], expected[i]) << i;
  curandDestroyGenerator(gen);
}
#else
TEST(Philox, MatchesCurandHostGenerator) {
  GTEST_SKIP() << "built without CUDA: no cuRAND to compare against (install the CUDA toolkit and reconfigure)";
}
#endif

}  // namespace
}  // namespace zeroth
