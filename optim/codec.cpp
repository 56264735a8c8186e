// The one-byte codec (optim/codec.h): stochastic rounding of g/s to int8 and the
// ledger-derived scale.
#include "optim/codec.h"

#include <cstdint>
#include <vector>

#include "optim/ledger.h"

#include <cmath>

#include "core/error.h"
#include "core/philox.h"

namespace zeroth {

void CodecConfig::validate() const {
  ZEROTH_CHECK(std::isfinite(init_scale) && init_scale > 0, "codec.init_scale must be finite and > 0 (got {})",
               init_scale);
  ZEROTH_CHECK(std::isfinite(range_rms) && range_rms > 0, "codec.range_rms must be finite and > 0 (got {})",
               range_rms);
  ZEROTH_CHECK(ema >= 0 && ema < 1, "codec.ema must be in [0, 1) (got {})", ema);
  ZEROTH_CHECK(std::isfinite(min_scale) && min_scale > 0, "codec.min_scale must be finite and > 0 (got {})",
               min_scale);
}

double codec_uniform(const PerturbationKey& key) {
  const PhiloxBlock b = philox4x32_10(PhiloxBlock{{0xFFFFFFFFu, key.slot, key.member, key.step}},
                                      philox_key(key.run_seed ^ kCodecSeedSalt));
  const uint64_t bits = (uint64_t(b.w[1]) << 32 | b.w[0]) >> 11;  // 53 bits
  return double(bits) * 0x1p-53;
}

Encoded encode_gradient(float g, float scale, const PerturbationKey& key) {
  ZEROTH_CHECK(std::isfinite(scale) && scale > 0, "encode_gradient: codec scale {} must be finite and > 0", scale);
  if (!std::isfinite(g)) return {0, EncodeStatus::NonFinite};
  // A float over a float fits a double's 53 bits with one rounding, and for
  // |x| < 127 the fraction x − floor(x) is exact, so P(round up) = frac to 2^-53.
  const double x = double(g) / double(scale);
  if (x > 127.0) return {uint8_t(int8_t(127)), EncodeStatus::Clipped};
  if (x < -127.0) return {uint8_t(int8_t(-127)), EncodeStatus::Clipped};
  const double lo = std::floor(x);
  const double frac = x - lo;
  const int code = int(lo) + (codec_uniform(key) < frac ? 1 : 0);  // in [−127, 127]
  return {uint8_t(int8_t(code)), EncodeStatus::Ok};
}

float decode_gradient(uint8_t code, float scale) {
  ZEROTH_CHECK(code != 0x80, "decode_gradient: code 0x80 (-128) is not a codec value; the record is malformed");
  return float(int8_t(code)) * scale;
}

Encoded encode_curvature(float h) {
  if (!std::isfinite(h) || h < 0) return {0, EncodeStatus::NonFinite};
  if (h == 0) return {uint8_t(int8_t(-127)), EncodeStatus::Clipped};
  const double c = std::nearbyint(4.0 * std::log2(double(h)));
  if (c > 127) return {uint8_t(int8_t(127)), EncodeStatus::Clipped};
  if (c < -127) return {uint8_t(int8_t(-127)), EncodeStatus::Clipped};
  return {uint8_t(int8_t(c)), EncodeStatus::Ok};
}

float decode_curvature(uint8_t code) {
  ZEROTH_CHECK(code != 0x80, "decode_curvature: code 0x80 (-128) is not a codec value; the record is malformed");
  // 2^(k/4) for k = 0..3: decimal literals the compiler rounds to the nearest float, the same bits everywhere.
  static constexpr float kQuarter[4] = {1.0f, 1.18920711500272106672f, 1.41421356237309504880f,
                                        1.68179283050742908606f};
  const int c = int(int8_t(code));
  return std::ldexp(kQuarter[c & 3], c >> 2);  // c = 4·(c >> 2) + (c & 3) in C++20's two's complement
}

CodecScale::CodecScale(const CodecConfig& cfg) : cfg_(cfg) { cfg_.validate(); }

float CodecScale::scale() const {
  if (ms_ < 0) return cfg_.init_scale;
  const double s = std::sqrt(ms_) * double(cfg_.range_rms) / 127.0;
  // Capped so 127·s stays a finite float (decode never overflows).
  constexpr double kMaxScale = 3.4e38 / 128.0;
  const float f = float(s < kMaxScale ? s : kMaxScale);
  return f > cfg_.min_scale ? f : cfg_.min_scale;
}

void CodecScale::update(const StepEntry& e) {
  std::vector<uint8_t> codes;
  if (!e.exact)
    for (const auto& r : e.records)
      if (r.kind != RecordKind::Curvature) codes.push_back(r.code);  // curvature codes have their own fixed grid
  update(e.scale, codes.data(), codes.size());
}

void CodecScale::update(float step_scale, const uint8_t* codes, size_t n) {
  if (n == 0) return;
  double sum = 0;
  for (size_t k = 0; k < n; ++k) {
    const double d = double(decode_gradient(codes[k], step_scale));
    sum = sum + d * d;
  }
  const double msq = sum / double(n);
  ms_ = ms_ < 0 ? msq : double(cfg_.ema) * ms_ + (1.0 - double(cfg_.ema)) * msq;
}

}  // namespace zeroth
