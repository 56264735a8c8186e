// The one-byte codec: each projected gradient g travels as one byte.
//
//   code = clamp(round_stochastic(g / s), −127, 127) stored as int8 (−128 unused)
//   decode(code) = code · s
// Stochastic rounding draws its uniform from Philox keyed by the record's own
// (run, step, member, slot), so encoding is reproducible and unbiased for
// |g| ≤ 127·s (to 2^-53·s: the uniform has 53 bits). Larger |g| is clipped to
// ±127·s (counted). NaN/Inf never enter the ledger: encode() reports them and
// the caller drops the record.
//
// The rounding stream: Philox4x32-10 with key = run_seed ^ kCodecSeedSalt and
// counter = (0xFFFFFFFF, slot, member, step); the uniform is the top 53 bits of
// words (1, 0). Both the key and the counter's block word differ from the
// perturbation stream (core/perturb.h), so rounding is independent of z.
//
// The scale s_t is a deterministic function of the ledger so far (no extra bytes
// on the wire): see CodecScale.
#pragma once
#include <cstdint>
#include <optional>

#include "core/perturb.h"

namespace zeroth {

struct StepEntry;

// Xor'ed into the run seed to key the rounding stream ("C0DEC" + "SALT"-ish bits).
constexpr uint64_t kCodecSeedSalt = 0xC0DEC5A17ED0B17Eull;

struct CodecConfig {
  float init_scale = 1.0f;   // s_0, before any step has been committed
  float range_rms = 8.0f;    // s_t = rms_ema(decoded g) · range_rms / 127: ±127 codes span range_rms RMS
  float ema = 0.95f;         // EMA factor of the mean square of decoded gradients
  float min_scale = 1e-8f;
  void validate() const;     // throws zeroth::Error naming the bad field
};

enum class EncodeStatus : uint8_t { Ok, Clipped, NonFinite };

struct Encoded {
  uint8_t code = 0;
  EncodeStatus status = EncodeStatus::Ok;
};

// Encodes g at scale s with stochastic rounding seeded from `key` (a key distinct
// from the perturbation's own stream is derived inside). scale must be finite
// and > 0 (else zeroth::Error). g/s is formed in double, so the rounding point
// is exact.
Encoded encode_gradient(float g, float scale, const PerturbationKey& key);
// float(int8(code)) · scale, one float multiply. Code 0x80 (−128) is never
// produced; decoding it throws zeroth::Error.
float decode_gradient(uint8_t code, float scale);

// HiZOO's curvature records (RecordKind::Curvature): h >= 0 on a fixed
// logarithmic grid of four codes per octave, h ≈ 2^(code/4) for codes
// −127..127 (about 2.8e-10 to 3.6e9, within 9 % of h), with no scale, so no
// state is involved. h below the grid encodes as −127, above as 127 (Clipped);
// a non-finite or negative h is NonFinite (no record is sent).
Encoded encode_curvature(float h);
// 2^(code/4) exactly: a power of two times one of four float constants
// (std::ldexp), the same bits everywhere. Code 0x80 throws zeroth::Error.
float decode_curvature(uint8_t code);
// The uniform in [0, 1) (multiples of 2^-53) that rounds the record of `key`.
double codec_uniform(const PerturbationKey& key);

// s_t from the entries committed so far: update() with each committed entry's
// decoded gradients, in ledger order; computed in double with fixed operation
// order (sqrt is correctly rounded by IEEE 754), so every replica gets the same
// bits. Rule:
//   msq_t = (Σ_k d_k²) / n  (d_k = decoded g, summed in record order, double)
//   ms    = msq_0 at the first non-empty step, then ema·ms + (1 − ema)·msq_t
//   s     = max(min_scale, float(sqrt(ms) · range_rms / 127))
// Empty steps carry no gradients and leave ms unchanged. When every code clips,
// msq = (127·s)², so s grows by sqrt(ema + (1 − ema)·range_rms²) per step
// (≈ 2× by default): a too-small start is left geometrically, ~10 steps per
// factor 1000.
class CodecScale {
 public:
  explicit CodecScale(const CodecConfig& cfg);
  float scale() const;  // s for the next step
  // Folds in one committed step: its scale and codes.
  void update(float step_scale, const uint8_t* codes, size_t n);
  // The same for a committed entry (an exact entry carries no codes).
  void update(const StepEntry& committed);

 private:
  CodecConfig cfg_;
  double ms_ = -1;  // EMA of mean square decoded g; < 0 = no step yet
};

}  // namespace zeroth
