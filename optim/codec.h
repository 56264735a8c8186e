// The one-byte codec: each projected gradient g travels as one byte.
//
//   code = clamp(round_stochastic(g / s), −127, 127) stored as int8 (−128 unused)
//   decode(code) = code · s
// Stochastic rounding draws its uniform from Philox keyed by the record's own
// (run, step, member, slot), so encoding is reproducible and unbiased for
// |g| ≤ 127·s. Larger |g| is clipped to ±127·s (counted). NaN/Inf never enter
// the ledger: encode() reports them and the caller drops the record.
//
// The scale s_t is a deterministic function of the ledger so far (no extra bytes
// on the wire): see CodecScale.
#pragma once
#include <cstdint>
#include <optional>

#include "core/perturb.h"

namespace zeroth {

struct CodecConfig {
  float init_scale = 1.0f;   // s_0, before any step has been committed
  float range_rms = 8.0f;    // s_t = rms_ema(decoded g) · range_rms / 127: ±127 codes span range_rms RMS
  float ema = 0.95f;         // EMA factor of the mean square of decoded gradients
  float min_scale = 1e-8f;
  void validate() const;
};

enum class EncodeStatus : uint8_t { Ok, Clipped, NonFinite };

struct Encoded {
  uint8_t code = 0;
  EncodeStatus status = EncodeStatus::Ok;
};

// Encodes g at scale s with stochastic rounding seeded from `key` (a key distinct
// from the perturbation's own stream is derived inside).
Encoded encode_gradient(float g, float scale, const PerturbationKey& key);
float decode_gradient(uint8_t code, float scale);

// s_t from the entries committed so far: update() with each committed entry's
// decoded gradients, in ledger order; computed in double with fixed operation
// order, so every replica gets the same bits.
class CodecScale {
 public:
  explicit CodecScale(const CodecConfig& cfg);
  float scale() const;  // s for the next step
  // Folds in one committed step: its scale and codes.
  void update(float step_scale, const uint8_t* codes, size_t n);

 private:
  CodecConfig cfg_;
  double ms_ = -1;  // EMA of mean square decoded g; < 0 = no step yet
};

}  // namespace zeroth
