#include "optim/robust.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fmt/format.h>
#include <vector>

#include "core/error.h"

namespace zeroth {

void RobustConfig::validate() const {
  ZEROTH_CHECK(rule == "none" || rule == "clip" || rule == "trim" || rule == "median",
               "robust.rule is \"{}\": use none, clip, trim or median", rule);
  ZEROTH_CHECK(rule != "median" || group >= 2,
               "robust.rule median takes the median over the members that evaluated one direction: set "
               "zo.redundancy to 3 or more (it is {})",
               group);
  ZEROTH_CHECK(!screen || group <= 1 || (rule != "median" && rule != "trim"),
               "robust.screen judges each member by its committed codes, but robust.rule {} with zo.redundancy {} "
               "commits one code per direction: use the screen or the per-direction rule, not both",
               rule, group);
  ZEROTH_CHECK(clip_k > 0 && std::isfinite(clip_k), "robust.clip_k must be > 0");
  ZEROTH_CHECK(min_clip >= 1 && min_clip <= 127, "robust.min_clip must be in 1..127");
  ZEROTH_CHECK(trim >= 0 && trim < 0.5f, "robust.trim must be in [0, 0.5)");
  ZEROTH_CHECK(window >= 4 && horizon >= window && bias_z > 0 && magnitude_k > 1,
               "robust: window must be >= 4, horizon >= window, bias_z > 0 and magnitude_k > 1");
}

namespace {
int value_of(uint8_t code) { return int(int8_t(code)); }

// sum / n rounded to the nearest integer, halves away from zero (exact in integers).
int rounded_mean(int64_t sum, int64_t n) {
  const int64_t a = sum < 0 ? -sum : sum, q = (2 * a + n) / (2 * n);
  return int(sum < 0 ? -q : q);
}

// One record per (group, slot): member = the group's first member, code = the
// median (rule median) or trimmed mean (rule trim) of the group's codes.
RobustStats aggregate_directions(StepEntry& e, const RobustConfig& cfg) {
  RobustStats st;
  std::map<std::pair<uint32_t, uint32_t>, std::vector<int>> dirs;  // (owner, slot) → codes
  for (const auto& r : e.records)
    dirs[{r.member - r.member % cfg.group, r.slot}].push_back(value_of(r.code));
  std::vector<Record> out;
  out.reserve(dirs.size());
  for (auto& [dir, codes] : dirs) {
    std::sort(codes.begin(), codes.end());
    const size_t n = codes.size();
    int v;
    if (cfg.rule == "median") {
      v = n % 2 ? codes[n / 2] : rounded_mean(int64_t(codes[n / 2 - 1]) + codes[n / 2], 2);
    } else {
      const size_t drop = size_t(std::floor(double(cfg.trim) * double(n)));
      int64_t sum = 0;
      for (size_t i = drop; i < n - drop; ++i) sum += codes[i];
      v = rounded_mean(sum, int64_t(n - 2 * drop));
    }
    Record r;
    r.member = dir.first;
    r.slot = dir.second;
    r.code = uint8_t(int8_t(v));  // |v| ≤ 127: a mean or median of codes in −127..127
    out.push_back(r);
  }
  st.trimmed = int64_t(e.records.size() - out.size());
  e.records = std::move(out);  // (owner, slot) order: the map's
  return st;
}
}  // namespace

RobustStats robust_filter(StepEntry& e, const RobustConfig& cfg) {
  RobustStats st;
  if (cfg.rule == "none" || e.exact || e.records.empty()) return st;
  if (cfg.group > 1 && (cfg.rule == "median" || cfg.rule == "trim")) return aggregate_directions(e, cfg);
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

std::vector<uint32_t> Screen::flagged(uint64_t step) const {
  struct Stat {
    uint32_t member;
    double mean, mag, rms;
    size_t n;
  };
  std::vector<Stat> stats;
  for (const auto& [m, q] : codes_) {
    double s = 0, a = 0, s2 = 0;
    size_t n = 0;
    for (auto it = q.rbegin(); it != q.rend() && n < size_t(cfg_.window); ++it) {
      if (it->first + uint64_t(cfg_.horizon) <= step) break;
      s += it->second;
      a += std::abs(it->second);
      s2 += double(it->second) * it->second;
      ++n;
    }
    if (n >= size_t(std::max(2, cfg_.window / 2))) stats.push_back({m, s / double(n), a / double(n), std::sqrt(s2 / double(n)), n});
  }
  std::vector<uint32_t> out;
  if (stats.size() < 3) return out;  // too few to tell a population from an outlier
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[(v.size() - 1) / 2];
  };
  std::vector<double> mags, rmss;
  for (const auto& st : stats) {
    mags.push_back(st.mag);
    rmss.push_back(st.rms);
  }
  const double mag_med = std::max(1.0, median(mags)), rms_med = std::max(1.0, median(rmss));
  for (const auto& st : stats)
    if (st.mag > double(cfg_.magnitude_k) * mag_med ||
        std::abs(st.mean) > double(cfg_.bias_z) * rms_med / std::sqrt(double(st.n)))
      out.push_back(st.member);
  return out;
}

int64_t Screen::filter(StepEntry& e) const {
  if (!cfg_.screen || e.exact || e.records.empty()) return 0;
  const auto bad = flagged(e.step);
  if (bad.empty()) return 0;
  const size_t before = e.records.size();
  std::erase_if(e.records, [&](const Record& r) { return std::binary_search(bad.begin(), bad.end(), r.member); });
  return int64_t(before - e.records.size());
}

void Screen::observe(const StepEntry& e) {
  if (!cfg_.screen || e.exact) return;
  for (const auto& r : e.records) {
    auto& q = codes_[r.member];
    q.emplace_back(e.step, value_of(r.code));
    while (q.size() > size_t(cfg_.window)) q.pop_front();
  }
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
