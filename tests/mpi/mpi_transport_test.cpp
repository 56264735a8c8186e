// MpiTransport under mpirun (CTest starts this binary with -np 1 and -np 3):
//   - logical members shared unevenly by the ranks (5 members on 3 ranks) give
//     every rank the same committed entry, equal to all members' records in
//     (member, slot) order, whatever the rank count;
//   - allgather returns every rank's value (of any length, empty included);
//   - broadcast carries rank 0's value; a stop asked by one rank stops all;
//   - exactly one record message (header + one byte per slot) per hosted member
//     is counted per step;
//   - the node-local rank numbers each host's ranks 0..n−1, and the
//     launcher's count of them agrees (GPU ranks pick their GPU by it).
// Every rank runs the same tests in the same order (collectives must match);
// only rank 0 prints, and the exit status is non-zero if any rank failed.
#include <cstdint>
#include <gtest/gtest.h>
#include <mpi.h>

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "comm/mpi_transport.h"
#include "core/error.h"
#include "tests/mpi/mpi_test_util.h"

namespace zeroth {
namespace {

using test::header_of;
using test::records_of;

MpiSession* g_session = nullptr;
constexpr uint32_t kSlots = 3;

TEST(MpiTransport, EveryRankCommitsTheSameEntryForUnevenHosting) {
  MpiTransport tr(*g_session);
  constexpr uint32_t kMembers = 5;
  tr.set_layout({kMembers, kSlots, false});
  for (const uint32_t m : tr.hosted()) EXPECT_EQ(m % tr.ranks(), tr.rank());
  for (uint64_t t = 0; t < 30; ++t) {
    std::vector<Record> mine;
    for (const uint32_t m : tr.hosted()) {
      const auto r = records_of(t, m, kSlots);
      mine.insert(mine.end(), r.rbegin(), r.rend());
    }
    const Commit c = tr.exchange(header_of(t), mine, false);
    StepEntry want = header_of(t);
    for (uint32_t m = 0; m < kMembers; ++m) {
      const auto r = records_of(t, m, kSlots);
      want.records.insert(want.records.end(), r.begin(), r.end());
    }
    ASSERT_EQ(c.entry, want) << "rank " << tr.rank() << " step " << t;
    EXPECT_FALSE(c.stop);
  }
  EXPECT_EQ(tr.record_bytes_sent(), 30 * tr.hosted().size() * (kMemberRecordsHeader + kSlots));
}

TEST(MpiTransport, AllgatherAndBroadcast) {
  MpiTransport tr(*g_session);
  const std::string mine = tr.rank() == 1 ? "" : std::string(tr.rank() * 1000 + 3, char('a' + tr.rank()));
  const auto all = tr.allgather(mine);
  ASSERT_EQ(all.size(), tr.ranks());
  for (uint32_t r = 0; r < tr.ranks(); ++r)
    EXPECT_EQ(all[r], r == 1 ? "" : std::string(r * 1000 + 3, char('a' + r))) << "rank " << r;
  const std::string b = tr.broadcast(tr.rank() == 0 ? std::string("from rank 0\0with a zero", 23) : "ignored");
  EXPECT_EQ(b, std::string("from rank 0\0with a zero", 23));
  tr.barrier();
}

TEST(MpiTransport, StopFromTheLastRankStopsEveryoneAtTheSameStep) {
  MpiTransport tr(*g_session);
  tr.set_layout({tr.ranks(), kSlots, false});
  EXPECT_EQ(test::step_stopped_by_last_rank(tr, kSlots), 6u);
}

TEST(MpiTransport, NodeLocalRanksNumberEachHostsRanks) {
  MpiTransport tr(*g_session);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  // "host local_rank local_ranks" from every rank, grouped by host.
  std::map<std::string, std::vector<std::pair<int, int>>> by_host;
  for (const std::string& v :
       tr.allgather(fmt::format("{} {} {}", host, tr.local_rank(), mpi_local_ranks()))) {
    char h[256] = {};
    int rank = -1, ranks = -1;
    ASSERT_EQ(std::sscanf(v.c_str(), "%255s %d %d", h, &rank, &ranks), 3) << v;
    by_host[h].push_back({rank, ranks});
  }
  for (auto& [h, ranks] : by_host) {
    std::sort(ranks.begin(), ranks.end());
    for (size_t i = 0; i < ranks.size(); ++i) {
      EXPECT_EQ(ranks[i].first, int(i)) << h;
      EXPECT_EQ(ranks[i].second, int(ranks.size())) << h;
    }
  }
}

TEST(MpiTransport, ForeignRecordsAreRefusedBeforeAnythingIsSent) {
  MpiTransport tr(*g_session);
  tr.set_layout({tr.ranks(), kSlots, false});
  // A record of a member this rank does not host: an error on this rank, raised
  // before the collective, so no rank is left waiting (every rank throws here).
  EXPECT_THROW(tr.exchange(header_of(0), records_of(0, (tr.rank() + 1) % (tr.ranks() + 1) + tr.ranks(), kSlots), false),
               Error);
}

}  // namespace
}  // namespace zeroth

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  zeroth::MpiSession session(&argc, &argv);
  zeroth::g_session = &session;
  return zeroth::test::run_all_tests_on_every_rank(session);
}
