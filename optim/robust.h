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
//         With zo.redundancy r > 1, per direction instead: the r members of a
//         group evaluated the same z on different samples, and each (group,
//         slot) becomes ONE record (member = the group's first) holding the
//         mean of its codes after dropping floor(trim · n) at each end.
//   median: (needs zo.redundancy ≥ 2) each (group, slot) becomes one record
//         holding the median of its codes: with r = 2f + 1 members per
//         direction, f liars in a group cannot move it beyond the honest
//         codes' range.
// Means and even-count medians round half away from zero. All rules are
// deterministic functions of the entry (and r).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "optim/ledger.h"

namespace zeroth {

struct RobustConfig {
  std::string rule = "none";  // none | clip | trim | median
  uint32_t group = 1;         // members per direction: zo.redundancy (set from the zo section)
  float clip_k = 4.0f;
  int min_clip = 8;           // never clip tighter than ±min_clip codes
  float trim = 0.1f;          // fraction dropped at each end
  // Screening (before the rule): members whose recent committed codes are
  // inconsistent with the population lose their records in this step.
  bool screen = false;
  int window = 32;            // codes per member considered (from the last `horizon` steps)
  int horizon = 128;          // steps after which a code leaves the window
  float bias_z = 4.0f;        // |mean code| > bias_z · (median member rms) / sqrt(n)  → flagged
  float magnitude_k = 3.0f;   // mean |code| > magnitude_k · (median over members)     → flagged
  void validate() const;      // throws zeroth::Error naming the key
};

struct RobustStats {
  int64_t clipped = 0;  // records whose code was clipped
  int64_t trimmed = 0;  // records dropped (trim), or folded into their direction's one record (median, grouped trim)
  int64_t screened = 0; // records dropped by screening
  int clip_at = 0;      // c (clip)
};

RobustStats robust_filter(StepEntry& entry, const RobustConfig& cfg);

// Screening state: a deterministic function of the committed entries (the
// ledger), so every replica, a resumed run and the coordinator agree. Honest
// projected gradients are symmetric around 0 (z has a random sign), so a member
// whose codes have a clear mean (bias) or a magnitude far above the others'
// (huge values) is inconsistent. A flagged member's records are dropped; its
// window then ages out (horizon), and it is judged afresh.
class Screen {
 public:
  explicit Screen(const RobustConfig& cfg) : cfg_(cfg) {}
  // Drops the records of flagged members from `entry` (step entry.step);
  // returns how many were dropped.
  int64_t filter(StepEntry& entry) const;
  void observe(const StepEntry& committed);  // fold in a committed entry
  std::vector<uint32_t> flagged(uint64_t step) const;

 private:
  RobustConfig cfg_;
  std::map<uint32_t, std::deque<std::pair<uint64_t, int>>> codes_;  // member → (step, code), newest last
};

// Attacks, for the attack suite and tests (`zeroth train --debug-attack`):
// what a poisoning member does to its own honest codes.
enum class Attack : uint8_t { None, Huge, SignFlip, Bias };
Attack parse_attack(const std::string& name);  // huge | sign | bias
uint8_t attack_code(Attack a, uint8_t honest_code);

}  // namespace zeroth
