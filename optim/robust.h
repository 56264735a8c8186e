// Robust aggregation of a step's records against poisoned contributions,
// applied where an entry is committed and BEFORE it enters the ledger, so the
// ledger holds exactly what every replica applies (replay needs nothing else).
//
//   none: records as sent (each is already bounded by the codec: |code| ≤ 127,
//         and non-finite values never enter).
//   clip: codes are clipped to ±c with c = max(min_clip, ceil(k · median |code|))
//         over the entry's records: a few members sending huge values cannot
//         move θ (or the codec scale, which follows the committed codes) by
//         more than k times what the typical member does.
//   trim: the floor(trim · n) largest and smallest codes are dropped (after
//         sorting by code, ties by (member, slot)): a trimmed mean per step.
// Both are deterministic functions of the entry.
#pragma once
#include <cstdint>
#include <string>

#include "optim/ledger.h"

namespace zeroth {

struct RobustConfig {
  std::string rule = "none";  // none | clip | trim
  float clip_k = 4.0f;
  int min_clip = 8;           // never clip tighter than ±min_clip codes
  float trim = 0.1f;          // fraction dropped at each end
  void validate() const;      // throws zeroth::Error naming the key
};

struct RobustStats {
  int64_t clipped = 0;  // records whose code was clipped
  int64_t trimmed = 0;  // records dropped
  int clip_at = 0;      // c (clip)
};

RobustStats robust_filter(StepEntry& entry, const RobustConfig& cfg);

// Attacks, for the attack suite and tests (`zeroth train --debug-attack`):
// what a poisoning member does to its own honest codes.
enum class Attack : uint8_t { None, Huge, SignFlip, Bias };
Attack parse_attack(const std::string& name);  // huge | sign | bias
uint8_t attack_code(Attack a, uint8_t honest_code);

}  // namespace zeroth
