// Robust aggregation (optim/robust.h): clip bounds every code by k·median|code|
// (never below min_clip), trim drops the extremes at both ends, both are
// deterministic and keep (member, slot) order; the attacks transform codes as
// documented.
#include <cstdint>
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


// Members per direction (zo.redundancy r): the records of each (group, slot)
// become one record of the group's first member holding their median.
StepEntry grouped_entry(uint32_t slots, const std::vector<std::vector<int>>& codes_by_member) {
  StepEntry e;
  e.step = 5;
  for (size_t m = 0; m < codes_by_member.size(); ++m)
    for (uint32_t k = 0; k < slots; ++k) {
      if (codes_by_member[m][k] == 999) continue;  // a dropped (non-finite) slot
      Record r;
      r.member = uint32_t(m);
      r.slot = k;
      r.code = uint8_t(int8_t(codes_by_member[m][k]));
      e.records.push_back(r);
    }
  return e;
}

TEST(Robust, MedianPerDirection) {
  RobustConfig c;
  c.rule = "median";
  c.group = 3;
  // Members 0-2 evaluated the directions of member 0, members 3-5 those of 3.
  StepEntry e = grouped_entry(2, {{4, -2}, {127, -3}, {5, -1},     // a liar (member 1) in group 0
                                  {-7, 10}, {-6, 999}, {-127, 11}});  // member 4 dropped slot 1
  const RobustStats st = robust_filter(e, c);
  ASSERT_EQ(e.records.size(), 4u);
  EXPECT_EQ(st.trimmed, 11 - 4);
  const std::vector<std::pair<uint32_t, uint32_t>> keys = {{0, 0}, {0, 1}, {3, 0}, {3, 1}};
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(e.records[i].member, keys[i].first);
    EXPECT_EQ(e.records[i].slot, keys[i].second);
  }
  // 5 (not the liar's 127), -2, -7, and (10 + 11)/2 = 10.5 rounded away from zero.
  EXPECT_EQ(codes_of(e), (std::vector<int>{5, -2, -7, 11}));
  EXPECT_NO_THROW(e.serialize());  // a valid ledger entry: sorted, no duplicates
}

TEST(Robust, EvenMedianAndGroupedTrimRoundHalfAwayFromZero) {
  RobustConfig c;
  c.rule = "median";
  c.group = 2;
  StepEntry e = grouped_entry(1, {{-3}, {-4}, {2}, {1}});
  robust_filter(e, c);
  EXPECT_EQ(codes_of(e), (std::vector<int>{-4, 2}));  // -3.5 → -4, 1.5 → 2
  c.rule = "trim";
  c.trim = 0.25f;
  c.group = 4;
  // Group 0: sorted -100 1 2 100 → drop one at each end → (1 + 2)/2 = 1.5 → 2.
  // Group 4: 3 3 3 4 → 3 3 → 3.
  StepEntry t = grouped_entry(1, {{1}, {100}, {-100}, {2}, {3}, {4}, {3}, {3}});
  const RobustStats st = robust_filter(t, c);
  EXPECT_EQ(st.trimmed, 6);
  EXPECT_EQ(codes_of(t), (std::vector<int>{2, 3}));
  EXPECT_EQ(t.records[1].member, 4u);
  // Without groups, trim keeps its per-step meaning (no aggregation).
  c.group = 1;
  StepEntry plain = grouped_entry(1, {{1}, {100}, {-100}, {2}});
  robust_filter(plain, c);
  EXPECT_EQ(codes_of(plain), (std::vector<int>{1, 2}));
}

// With f of r = 2f + 1 members lying (any values) in every group, each
// direction's committed code stays within the honest codes' range.
TEST(Robust, MedianHoldsAgainstAMinorityPerGroup) {
  std::mt19937 rng(7);
  RobustConfig c;
  c.rule = "median";
  for (const uint32_t f : {1u, 2u, 3u}) {
    const uint32_t r = 2 * f + 1, groups = 6;
    c.group = r;
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<std::vector<int>> codes(r * groups, std::vector<int>(1));
      std::vector<int> lo(groups, 127), hi(groups, -127);
      for (uint32_t m = 0; m < r * groups; ++m) {
        const uint32_t g = m / r;
        const bool liar = (m % r) < f;  // the first f of each group
        const int v = liar ? int(rng() % 2 ? 127 : -127) : int(rng() % 21) - 10;
        codes[m][0] = v;
        if (!liar) lo[g] = std::min(lo[g], v), hi[g] = std::max(hi[g], v);
      }
      StepEntry e = grouped_entry(1, codes);
      robust_filter(e, c);
      ASSERT_EQ(e.records.size(), groups);
      for (uint32_t g = 0; g < groups; ++g) {
        const int v = int(int8_t(e.records[g].code));
        EXPECT_GE(v, lo[g]) << "f " << f << " group " << g;
        EXPECT_LE(v, hi[g]) << "f " << f << " group " << g;
      }
    }
  }
}

TEST(Robust, MedianNeedsGroupsAndExcludesTheScreen) {
  RobustConfig c;
  c.rule = "median";
  c.group = 1;
  EXPECT_THROW(c.validate(), Error);
  c.group = 3;
  EXPECT_NO_THROW(c.validate());
  c.screen = true;
  EXPECT_THROW(c.validate(), Error);
  c.rule = "clip";
  EXPECT_NO_THROW(c.validate());
  c.rule = "mean";
  EXPECT_THROW(c.validate(), Error);
}

}  // namespace
}  // namespace zeroth
