// LocalTransport: N members as threads going through the step protocol.
//   - every member receives the identical committed entry, with every member's
//     records in (member, slot) order and the header as given;
//   - a stop request from one member stops all of them after the same step;
//   - allgather returns every member's value by member;
//   - a member that fails (abort) makes the others throw "stopping: member X
//     failed: ..." instead of waiting forever.
// Each group runs under a time bound: a hang fails the test (and ends the
// binary, since hung threads cannot be joined) instead of blocking CI.
#include <cstdint>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/local_transport.h"
#include "core/error.h"

namespace zeroth {
namespace {

constexpr uint32_t kSlots = 3;
constexpr auto kBound = std::chrono::seconds(20);

// Runs body(member) on `members` threads and returns when all are done. A
// group still running after kBound is a hang: report it and exit, because
// the hung threads reference this frame and cannot be abandoned safely.
void run_group(uint32_t members, const std::function<void(uint32_t)>& body) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  std::thread runner([members, &body, done] {
    std::vector<std::thread> threads;
    for (uint32_t m = 0; m < members; ++m) threads.emplace_back(body, m);
    for (auto& t : threads) t.join();
    done->set_value();
  });
  if (future.wait_for(kBound) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: the group of %u members is still running after %lld s: a hang\n", members,
                 static_cast<long long>(kBound.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  runner.join();
}

// Member m's records for step t: codes depend on (t, m, slot); some slots are
// dropped; handed over in reverse slot order (the transport must not care).
std::vector<Record> records_of(uint64_t t, uint32_t m, bool exact) {
  std::vector<Record> out;
  for (int s = int(kSlots) - 1; s >= 0; --s) {
    if ((t + m + uint64_t(s)) % 5 == 0) continue;
    Record r;
    r.member = m;
    r.slot = uint32_t(s);
    if (exact) {
      r.value = float(t) * 0.5f - float(m) + float(s) * 1e-3f;
      r.exact = true;
    } else {
      r.code = uint8_t(int8_t(int(t * 7 + m * 13 + uint64_t(s)) % 255 - 127));
    }
    out.push_back(r);
  }
  return out;
}

StepEntry header_of(uint64_t t) {
  StepEntry h;
  h.step = t;
  h.epoch = 4;
  h.scale = 0.125f * float(t + 1);
  h.lr = 1e-3f / float(t + 1);
  return h;
}

// The entry every member must see: all members' records sorted by (member, slot).
StepEntry expected_entry(uint64_t t, uint32_t members, bool exact) {
  StepEntry e = header_of(t);
  e.exact = exact;
  for (uint32_t m = 0; m < members; ++m) {
    auto r = records_of(t, m, exact);
    e.records.insert(e.records.end(), r.rbegin(), r.rend());  // slot order within a member
  }
  return e;
}

class LocalTransportSteps : public testing::TestWithParam<std::tuple<uint32_t, bool>> {};

TEST_P(LocalTransportSteps, EveryMemberGetsTheSameSortedEntry) {
  const auto [members, exact] = GetParam();
  constexpr uint64_t kSteps = 50;
  auto group = std::make_shared<LocalGroup>(members);
  std::vector<std::vector<Commit>> got(members);
  std::vector<uint64_t> record_bytes(members);
  std::vector<std::string> errors(members);
  run_group(members, [&](uint32_t m) {
    LocalTransport tr(group, m);
    tr.set_layout({members, kSlots, exact});
    try {
      EXPECT_EQ(tr.rank(), m);
      EXPECT_EQ(tr.ranks(), members);
      EXPECT_EQ(tr.is_leader(), m == 0);
      for (uint64_t t = 0; t < kSteps; ++t) got[m].push_back(tr.exchange(header_of(t), records_of(t, m, exact), false));
      record_bytes[m] = tr.record_bytes_sent();
      tr.barrier();
    } catch (const std::exception& e) {
      errors[m] = e.what();
      tr.abort(e.what());
    }
  });
  for (uint32_t m = 0; m < members; ++m) {
    EXPECT_EQ(errors[m], "") << "member " << m;
    ASSERT_EQ(got[m].size(), kSteps);
    // One header and one byte (exact: four) per slot, every step.
    EXPECT_EQ(record_bytes[m], kSteps * (kMemberRecordsHeader + kSlots * (exact ? 4 : 1)));
    for (uint64_t t = 0; t < kSteps; ++t) {
      EXPECT_FALSE(got[m][t].stop);
      EXPECT_EQ(got[m][t].entry, expected_entry(t, members, exact)) << "member " << m << " step " << t;
    }
  }
  // The entries are non-trivial: several members' records interleave.
  EXPECT_GE(expected_entry(7, members, exact).records.size(), size_t(members));
}

INSTANTIATE_TEST_SUITE_P(Members, LocalTransportSteps,
                         testing::Combine(testing::Values(1u, 2u, 4u), testing::Values(false, true)));

// Four logical members shared by 1, 2 or 4 participants (m % ranks): the
// committed entries are the same whatever the number of participants, so a
// run's ledger does not depend on how many processes host its members.
TEST(LocalTransport, EntriesDoNotDependOnHowManyParticipantsHostTheMembers) {
  constexpr uint32_t kMembers = 4;
  for (uint32_t ranks : {1u, 2u, 4u}) {
    SCOPED_TRACE(testing::Message() << ranks << " participants");
    auto group = std::make_shared<LocalGroup>(ranks);
    std::vector<std::vector<Commit>> got(ranks);
    std::vector<std::vector<uint32_t>> hosted(ranks);
    std::vector<uint64_t> record_bytes(ranks);
    run_group(ranks, [&](uint32_t p) {
      LocalTransport tr(group, p);
      tr.set_layout({kMembers, kSlots, false});
      hosted[p] = tr.hosted();
      for (uint64_t t = 0; t < 20; ++t) {
        std::vector<Record> mine;
        for (const uint32_t m : tr.hosted()) {
          auto r = records_of(t, m, false);
          mine.insert(mine.end(), r.begin(), r.end());
        }
        got[p].push_back(tr.exchange(header_of(t), mine, false));
      }
      record_bytes[p] = tr.record_bytes_sent();
    });
    std::vector<uint32_t> all;
    for (uint32_t p = 0; p < ranks; ++p) {
      for (const uint32_t m : hosted[p]) EXPECT_EQ(m % ranks, p);
      all.insert(all.end(), hosted[p].begin(), hosted[p].end());
      EXPECT_EQ(record_bytes[p], 20 * hosted[p].size() * (kMemberRecordsHeader + kSlots));
      for (uint64_t t = 0; t < 20; ++t) EXPECT_EQ(got[p][t].entry, expected_entry(t, kMembers, false)) << "step " << t;
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, (std::vector<uint32_t>{0, 1, 2, 3}));
  }
}

TEST(LocalTransport, MoreParticipantsThanMembersIsAnError) {
  auto group = std::make_shared<LocalGroup>(4);
  LocalTransport tr(group, 0);
  try {
    tr.set_layout({2, kSlots, false});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 logical members cannot be shared by 4"), std::string::npos) << e.what();
  }
}

TEST(LocalTransport, StopFromOneMemberStopsAllAtTheSameStep) {
  for (uint32_t members : {1u, 2u, 4u}) {
    const uint32_t asker = members - 1;
    constexpr uint64_t kAskAt = 17;
    auto group = std::make_shared<LocalGroup>(members);
    std::vector<uint64_t> stopped_after(members, 0);
    std::vector<std::string> errors(members);
    run_group(members, [&](uint32_t m) {
      LocalTransport tr(group, m);
      tr.set_layout({members, kSlots, false});
      try {
        for (uint64_t t = 0; t < 50; ++t) {
          const Commit c = tr.exchange(header_of(t), records_of(t, m, false), m == asker && t >= kAskAt);
          if (c.stop) {
            stopped_after[m] = t;
            break;
          }
        }
        tr.barrier();
      } catch (const std::exception& e) {
        errors[m] = e.what();
        tr.abort(e.what());
      }
    });
    for (uint32_t m = 0; m < members; ++m) {
      EXPECT_EQ(errors[m], "") << "member " << m;
      EXPECT_EQ(stopped_after[m], kAskAt) << members << " members, member " << m;
    }
  }
}

// Member m's value in a round: distinct per member and round, of varying length.
std::string value_of(uint32_t m, int round) { return fmt::format("m{}r{}{}", m, round, std::string(m, '+')); }

TEST(LocalTransport, AllgatherReturnsEveryMembersValue) {
  for (uint32_t members : {1u, 2u, 4u}) {
    auto group = std::make_shared<LocalGroup>(members);
    std::vector<std::vector<std::vector<std::string>>> got(members);
    run_group(members, [&](uint32_t m) {
      LocalTransport tr(group, m);
      for (int round = 0; round < 20; ++round) got[m].push_back(tr.allgather(value_of(m, round)));
    });
    for (uint32_t m = 0; m < members; ++m) {
      ASSERT_EQ(got[m].size(), 20u);
      for (int round = 0; round < 20; ++round) {
        ASSERT_EQ(got[m][size_t(round)].size(), members);
        for (uint32_t k = 0; k < members; ++k)
          EXPECT_EQ(got[m][size_t(round)][k], value_of(k, round));
      }
    }
  }
}

// A member throws midway (as cmd_train's member threads do: catch, abort);
// every other member's next exchange/allgather/barrier throws naming it,
// instead of waiting for it forever. The others abort in turn, as cmd_train's
// threads do, and nothing hangs.
void expect_abort_releases_everyone(uint32_t members, uint32_t failing, uint64_t fail_at, int where) {
  SCOPED_TRACE(testing::Message() << members << " members, member " << failing << " fails at step " << fail_at
                                  << " in phase " << where);
  auto group = std::make_shared<LocalGroup>(members);
  std::vector<std::string> errors(members);
  std::vector<uint64_t> steps_done(members, 0);
  run_group(members, [&](uint32_t m) {
    LocalTransport tr(group, m);
    tr.set_layout({members, kSlots, false});
    try {
      for (uint64_t t = 0; t < 50; ++t) {
        if (m == failing && t == fail_at && where == 0) throw Error("out of memory in the forward");
        tr.exchange(header_of(t), records_of(t, m, false), false);
        if (m == failing && t == fail_at && where == 1) throw Error("out of memory in the forward");
        tr.allgather(std::to_string(t));
        if (m == failing && t == fail_at && where == 2) throw Error("out of memory in the forward");
        if (t % 10 == 9) tr.barrier();
        steps_done[m] = t + 1;
      }
    } catch (const std::exception& e) {
      errors[m] = e.what();
      tr.abort(e.what());
    }
  });
  const std::string want = fmt::format("stopping: member {} failed: out of memory in the forward", failing);
  for (uint32_t m = 0; m < members; ++m) {
    if (m == failing) {
      EXPECT_EQ(errors[m], "out of memory in the forward");
      EXPECT_EQ(steps_done[m], fail_at);
    } else {
      EXPECT_EQ(errors[m], want) << "member " << m;
      EXPECT_LE(steps_done[m], fail_at + 1) << "member " << m;
    }
  }
}

TEST(LocalTransport, AbortReleasesTheOthers) {
  for (uint32_t members : {2u, 4u}) {
    for (uint32_t failing : {0u, members - 1}) {
      for (int where : {0, 1, 2}) {
        expect_abort_releases_everyone(members, failing, 0, where);
        expect_abort_releases_everyone(members, failing, 13, where);
      }
    }
  }
}

}  // namespace
}  // namespace zeroth
