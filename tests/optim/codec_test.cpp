// The one-byte codec: stochastic rounding is unbiased, bounded, reproducible and
// keyed per record; the ledger-derived scale is deterministic and tracks |g|.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "optim/codec.h"
#include "optim/ledger.h"

namespace zeroth {
namespace {

PerturbationKey key_of(int64_t i) { return {0x5eedull, uint32_t(i / 1000), uint32_t(i % 7), uint32_t(i % 1000)}; }

int code_value(uint8_t c) { return int(int8_t(c)); }

// Mean of decode(encode(g)) over 10^6 keys against g. Each decoded value is
// lo·s or (lo+1)·s with P(up) = f = frac(g/s), so the mean's standard deviation
// is s·sqrt(f(1−f)/n): 6 σ fails a correct codec with probability ~2e-9, while
// a round-to-nearest codec misses g by up to s/2 (far outside for f ≠ 0, 1).
// Folding a committed entry is folding its scale and codes; an exact entry
// (fp32 values, no codes) leaves the scale as it was.
TEST(Codec, UpdateFromAnEntryFoldsItsCodes) {
  StepEntry e;
  e.scale = 0.5f;
  for (const uint8_t code : {uint8_t(3), uint8_t(250), uint8_t(127)}) {
    Record r;
    r.code = code;
    e.records.push_back(r);
  }
  CodecScale a(CodecConfig{}), b(CodecConfig{});
  a.update(e);
  const uint8_t codes[] = {3, 250, 127};
  b.update(0.5f, codes, 3);
  EXPECT_EQ(a.scale(), b.scale());
  EXPECT_NE(a.scale(), CodecScale(CodecConfig{}).scale());
  StepEntry x = e;
  x.exact = true;
  const float before = a.scale();
  a.update(x);
  EXPECT_EQ(a.scale(), before);
}

TEST(Codec, UnbiasedOverAMillionEncodes) {
  constexpr int64_t n = 1000000;
  for (float s : {1.0f, 0.037f})
    for (float gs : {0.5f, 0.3f, 2.999999f, 3.0f, -5.25f, 1e-3f, -126.7f}) {
      const float g = gs * s;
      double sum = 0;
      int ups = 0;
      const double x = double(g) / double(s);
      const double lo = std::floor(x);
      for (int64_t i = 0; i < n; ++i) {
        const Encoded e = encode_gradient(g, s, key_of(i));
        ASSERT_EQ(e.status, EncodeStatus::Ok);
        sum += double(decode_gradient(e.code, s));
        ups += code_value(e.code) == int(lo) + 1;
      }
      const double f = x - lo;
      const double sigma = double(s) * std::sqrt(f * (1 - f) / double(n));
      const double mean = sum / double(n);
      // float(code)·s rounds each decoded value by at most half an ulp of 127·s.
      const double rounding = 127.0 * double(s) * 6e-8;
      EXPECT_LE(std::abs(mean - double(g)), 6 * sigma + rounding) << "g = " << gs << "·s, s = " << s;
      if (f == 0) {
        EXPECT_EQ(ups, 0) << "an exact multiple of s never rounds";
      }
    }
}

TEST(Codec, ErrorBelowOneStepInRange) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-127.0f, 127.0f);
  for (float s : {1.0f, 3e-4f, 250.0f})
    for (int i = 0; i < 20000; ++i) {
      const float g = u(rng) * s;
      const Encoded e = encode_gradient(g, s, key_of(i));
      ASSERT_EQ(e.status, EncodeStatus::Ok);
      ASSERT_LT(std::abs(double(decode_gradient(e.code, s)) - double(g)), double(s)) << g << " at " << s;
    }
}

TEST(Codec, ZeroNonFiniteAndExtremes) {
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(encode_gradient(0.0f, 0.1f, key_of(i)).code, 0);
    EXPECT_EQ(encode_gradient(-0.0f, 0.1f, key_of(i)).code, 0);
  }
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()})
    EXPECT_EQ(encode_gradient(bad, 1.0f, key_of(1)).status, EncodeStatus::NonFinite);
  const float s = 0.01f;
  // ±127·s exactly is in range; beyond is clipped to ±127.
  Encoded e = encode_gradient(127.0f * s, s, key_of(2));
  EXPECT_EQ(code_value(e.code), 127);
  e = encode_gradient(-127.0f * s, s, key_of(2));
  EXPECT_EQ(code_value(e.code), -127);
  for (float g : {127.5f * s, 1e30f, std::numeric_limits<float>::max()}) {
    e = encode_gradient(g, s, key_of(3));
    EXPECT_EQ(code_value(e.code), 127);
    EXPECT_EQ(e.status, EncodeStatus::Clipped);
    e = encode_gradient(-g, s, key_of(3));
    EXPECT_EQ(code_value(e.code), -127);
    EXPECT_EQ(e.status, EncodeStatus::Clipped);
  }
  for (int i = 0; i < 1000; ++i) {
    const int c = code_value(encode_gradient(126.5f * s, s, key_of(i)).code);
    EXPECT_TRUE(c == 126 || c == 127) << c;
  }
  EXPECT_FLOAT_EQ(decode_gradient(uint8_t(int8_t(-127)), 0.5f), -63.5f);
  EXPECT_THROW(decode_gradient(0x80, 1.0f), Error);
  EXPECT_THROW(encode_gradient(1.0f, 0.0f, key_of(1)), Error);
  EXPECT_THROW(encode_gradient(1.0f, std::numeric_limits<float>::infinity(), key_of(1)), Error);
}

// Same key → same code; keys that differ in any one field round independently,
// and independently of the perturbation's own z stream.
TEST(Codec, ReproducibleAndKeyedPerRecord) {
  constexpr int n = 20000;
  int up = 0, same_member = 0, same_seed = 0, same_step = 0, same_z = 0;
  for (int i = 0; i < n; ++i) {
    const PerturbationKey k{42, uint32_t(i), 3, uint32_t(i % 5)};
    const uint8_t c = encode_gradient(0.5f, 1.0f, k).code;
    ASSERT_EQ(encode_gradient(0.5f, 1.0f, k).code, c);
    up += c == 1;
    same_member += encode_gradient(0.5f, 1.0f, {42, uint32_t(i), 4, uint32_t(i % 5)}).code == c;
    same_seed += encode_gradient(0.5f, 1.0f, {43, uint32_t(i), 3, uint32_t(i % 5)}).code == c;
    same_step += encode_gradient(0.5f, 1.0f, {42, uint32_t(i) + n, 3, uint32_t(i % 5)}).code == c;
    same_z += (z_at(k, Distribution::Rademacher, 0) > 0) == (c == 1);
  }
  // Each count is Binomial(n, 1/2) when independent: σ = sqrt(n)/2 ≈ 71; allow 6 σ.
  const double tol = 6 * std::sqrt(double(n)) / 2;
  for (int count : {up, same_member, same_seed, same_step, same_z}) EXPECT_NEAR(count, n / 2, tol);
}

TEST(CodecScale, InitialDeterministicAndTracksMagnitude) {
  CodecConfig cfg;
  cfg.init_scale = 1e-4f;  // far too small for |g| ~ 1: codes clip until the scale climbs
  CodecScale a(cfg), b(cfg);
  EXPECT_EQ(a.scale(), 1e-4f);
  std::mt19937 rng(9);
  std::normal_distribution<float> grad(0.0f, 1.0f);
  std::vector<uint8_t> codes(64);
  for (int step = 0; step < 200; ++step) {
    const float s = a.scale();
    for (size_t k = 0; k < codes.size(); ++k)
      codes[k] = encode_gradient(grad(rng), s, {1, uint32_t(step), uint32_t(k), 0}).code;
    a.update(s, codes.data(), codes.size());
    b.update(s, codes.data(), codes.size());
    ASSERT_EQ(exact::bits(a.scale()), exact::bits(b.scale())) << "step " << step;
    a.update(s, nullptr, 0);  // an empty step changes nothing
    ASSERT_EQ(exact::bits(a.scale()), exact::bits(b.scale()));
  }
  // RMS of g is 1, so s → 8/127 (decoded RMS exceeds |g|'s slightly by rounding noise).
  EXPECT_NEAR(a.scale(), 8.0f / 127.0f, 0.2f * 8.0f / 127.0f);

  // Ten times larger gradients → about ten times the scale.
  CodecScale c(cfg);
  for (int step = 0; step < 200; ++step) {
    const float s = c.scale();
    for (size_t k = 0; k < codes.size(); ++k)
      codes[k] = encode_gradient(10.0f * grad(rng), s, {1, uint32_t(step), uint32_t(k), 0}).code;
    c.update(s, codes.data(), codes.size());
  }
  EXPECT_NEAR(c.scale() / a.scale(), 10.0f, 2.0f);

  // All-zero gradients decay the scale to its floor.
  CodecScale z(cfg);
  std::fill(codes.begin(), codes.end(), 0);
  for (int step = 0; step < 5; ++step) z.update(z.scale(), codes.data(), codes.size());
  EXPECT_EQ(z.scale(), cfg.min_scale);
}

TEST(CodecScale, ConfigValidation) {
  CodecConfig c;
  EXPECT_NO_THROW(c.validate());
  c.ema = 1.0f;
  EXPECT_THROW(c.validate(), Error);
  c = {};
  c.init_scale = 0;
  EXPECT_THROW(CodecScale{c}, Error);
  c = {};
  c.min_scale = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(c.validate(), Error);
}

}  // namespace
}  // namespace zeroth
