#include "optim/robust.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <vector>

#include "core/error.h"

namespace zeroth {

void RobustConfig::validate() const {
  ZEROTH_CHECK(rule == "none" || rule == "clip" || rule == "trim", "robust.rule is \"{}\": use none, clip or trim",
               rule);
  ZEROTH_CHECK(clip_k > 0 && std::isfinite(clip_k), "robust.clip_k must be > 0");
  ZEROTH_CHECK(min_clip >= 1 && min_clip <= 127, "robust.min_clip must be in 1..127");
  ZEROTH_CHECK(trim >= 0 && trim < 0.5f, "robust.trim must be in [0, 0.5)");
}

namespace {
int value_of(uint8_t code) { return int(int8_t(code)); }
}  // namespace

RobustStats robust_filter(StepEntry& e, const RobustConfig& cfg) {
  RobustStats st;
  if (cfg.rule == "none" || e.exact || e.records.empty()) return st;
  if (cfg.rule == "clip") {
    std::vector<int> mags;
    for (const auto& r : e.records) mags.push_back(std::abs(value_of(r.code)));
    std::sort(mags.begin(), mags.end());
    const size_t n = mags.size();
    // The lower median: with an even count, the smaller middle value.
    const int med = mags[(n - 1) / 2];
    const int c = std::clamp(std::max(cfg.min_clip, int(std::ceil(double(cfg.clip_k) * med))), 1, 127);
    st.clip_at = c;
    for (auto& r : e.records) {
      const int v = value_of(r.code);
      if (std::abs(v) > c) {
        r.code = uint8_t(int8_t(v > 0 ? c : -c));
        ++st.clipped;
      }
    }
    return st;
  }
  // trim
  const size_t n = e.records.size(), drop = size_t(std::floor(double(cfg.trim) * double(n)));
  if (drop == 0) return st;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return value_of(e.records[a].code) < value_of(e.records[b].code);  // ties keep (member, slot) order
  });
  std::vector<bool> keep(n, true);
  for (size_t i = 0; i < drop; ++i) keep[order[i]] = keep[order[n - 1 - i]] = false;
  std::vector<Record> kept;
  for (size_t i = 0; i < n; ++i)
    if (keep[i]) kept.push_back(e.records[i]);
  st.trimmed = int64_t(n - kept.size());
  e.records = std::move(kept);
  return st;
}

Attack parse_attack(const std::string& name) {
  if (name == "huge") return Attack::Huge;
  if (name == "sign") return Attack::SignFlip;
  if (name == "bias") return Attack::Bias;
  throw Error(fmt::format("unknown attack \"{}\": use huge, sign or bias", name));
}

uint8_t attack_code(Attack a, uint8_t honest) {
  const int v = value_of(honest);
  switch (a) {
    case Attack::None: return honest;
    case Attack::Huge: return uint8_t(int8_t(v >= 0 ? 127 : -127));
    case Attack::SignFlip: return uint8_t(int8_t(std::clamp(-v, -127, 127)));
    case Attack::Bias: return uint8_t(int8_t(std::clamp(v + 64, -127, 127)));
  }
  return honest;
}

}  // namespace zeroth
