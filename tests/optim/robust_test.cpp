// Robust aggregation (optim/robust.h): clip bounds every code by k·median|code|
// (never below min_clip), trim drops the extremes at both ends, both are
// deterministic and keep (member, slot) order; the attacks transform codes as
// documented.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "optim/robust.h"

namespace zeroth {
namespace {

StepEntry entry_of(const std::vector<int>& codes) {
  StepEntry e;
  e.step = 3;
  for (size_t i = 0; i < codes.size(); ++i) {
    Record r;
    r.member = uint32_t(i);
    r.code = uint8_t(int8_t(codes[i]));
    e.records.push_back(r);
  }
  return e;
}
std::vector<int> codes_of(const StepEntry& e) {
  std::vector<int> v;
  for (const auto& r : e.records) v.push_back(int(int8_t(r.code)));
  return v;
}

TEST(Robust, ClipBoundsByMedianMagnitude) {
  RobustConfig c;
  c.rule = "clip";
  c.clip_k = 2;
  c.min_clip = 4;
  StepEntry e = entry_of({3, -5, 127, 4, -127, 6, 2});  // |codes| sorted 2 3 4 5 6 127 127: median 5 → c = 10
  const auto st = robust_filter(e, c);
  EXPECT_EQ(st.clip_at, 10);
  EXPECT_EQ(st.clipped, 2);
  EXPECT_EQ(codes_of(e), (std::vector<int>{3, -5, 10, 4, -10, 6, 2}));
  // Never tighter than min_clip.
  StepEntry small = entry_of({1, -1, 0, 50});
  EXPECT_EQ(robust_filter(small, c).clip_at, 4);
  EXPECT_EQ(codes_of(small), (std::vector<int>{1, -1, 0, 4}));
}

TEST(Robust, TrimDropsBothEndsDeterministically) {
  RobustConfig c;
  c.rule = "trim";
  c.trim = 0.2f;
  StepEntry e = entry_of({5, -100, 7, 100, 6, 6, 8, -3, 2, 1});  // n = 10: drop 2 at each end
  const auto st = robust_filter(e, c);
  EXPECT_EQ(st.trimmed, 4);
  EXPECT_EQ(codes_of(e), (std::vector<int>{5, 7, 6, 6, 2, 1}));
  for (size_t i = 1; i < e.records.size(); ++i) EXPECT_LT(e.records[i - 1].member, e.records[i].member);
  // The same input gives the same output.
  StepEntry again = entry_of({5, -100, 7, 100, 6, 6, 8, -3, 2, 1});
  robust_filter(again, c);
  EXPECT_EQ(again, e);
}

TEST(Robust, NoneAndExactEntriesAreUntouched) {
  StepEntry e = entry_of({127, -127, 3});
  const StepEntry before = e;
  robust_filter(e, RobustConfig{});
  EXPECT_EQ(e, before);
  RobustConfig c;
  c.rule = "clip";
  StepEntry x = before;
  x.exact = true;
  robust_filter(x, c);
  EXPECT_EQ(x.records.size(), before.records.size());
}

TEST(Robust, AttacksAndValidation) {
  EXPECT_EQ(int(int8_t(attack_code(Attack::Huge, uint8_t(int8_t(-3))))), -127);
  EXPECT_EQ(int(int8_t(attack_code(Attack::Huge, 5))), 127);
  EXPECT_EQ(int(int8_t(attack_code(Attack::SignFlip, uint8_t(int8_t(-127))))), 127);
  EXPECT_EQ(int(int8_t(attack_code(Attack::Bias, 100))), 127);
  EXPECT_EQ(int(int8_t(attack_code(Attack::Bias, uint8_t(int8_t(-10))))), 54);
  EXPECT_THROW(parse_attack("nice"), Error);
  RobustConfig c;
  c.rule = "median";
  EXPECT_THROW(c.validate(), Error);
  c.rule = "trim";
  c.trim = 0.5f;
  EXPECT_THROW(c.validate(), Error);
}

}  // namespace
}  // namespace zeroth

namespace zeroth {
namespace {

// Screening: 12 honest members with symmetric codes are never flagged over 400
// steps; a biased member and a huge one are, and once they fall silent (their
// records dropped) their windows age out after `horizon` steps.
TEST(Robust, ScreenFlagsBiasAndMagnitudeNotHonestMembers) {
  RobustConfig c;
  c.screen = true;
  Screen screen(c);
  std::mt19937 rng(5);
  std::normal_distribution<double> g(0, 15);
  int64_t honest_dropped = 0, attacker_dropped = 0;
  for (uint64_t t = 0; t < 400; ++t) {
    StepEntry e;
    e.step = t;
    for (uint32_t m = 0; m < 14; ++m) {
      Record r;
      r.member = m;
      int v = int(std::lround(g(rng)));
      if (m == 12) v += 40;                       // bias
      if (m == 13) v = v >= 0 ? 127 : -127;       // huge
      r.code = uint8_t(int8_t(std::clamp(v, -127, 127)));
      e.records.push_back(r);
    }
    const size_t before = e.records.size();
    screen.filter(e);
    for (uint32_t m = 0; m < 14; ++m) {
      const bool kept = std::any_of(e.records.begin(), e.records.end(), [&](const Record& r) { return r.member == m; });
      if (!kept) (m >= 12 ? attacker_dropped : honest_dropped) += 1;
    }
    EXPECT_LE(e.records.size(), before);
    screen.observe(e);
  }
  EXPECT_EQ(honest_dropped, 0);
  EXPECT_GT(attacker_dropped, 2 * 300);  // both attackers are silenced most of the time
  // A flagged member that stops sending is judged afresh after the horizon.
  EXPECT_FALSE(screen.flagged(399).empty());
  EXPECT_TRUE(screen.flagged(399 + uint64_t(c.horizon) + 1).empty());
}

}  // namespace
}  // namespace zeroth
