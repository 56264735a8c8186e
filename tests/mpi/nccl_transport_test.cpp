// NcclTransport under mpirun, one rank per GPU (CTest starts this binary with
// -np 1 and -np 2; it needs as many GPUs per node as ranks per node):
//   - exchange commits, on every rank, the same entry as the MPI transport given
//     the same records (members shared unevenly, members with different slot
//     counts so messages are padded, one-byte and exact fp32 layouts), and
//     counts the same record bytes;
//   - a stop asked by the last rank stops everyone at the same step;
//   - allgather returns what the MPI transport's returns (values of any length,
//     empty and all-empty included); barrier completes;
//   - with two ranks or more, a collective that a peer never joins ends at the
//     deadline with an error naming the rank and the wait, and the transport
//     refuses further calls.
// Exit 77 (skipped) without a usable GPU, or with more ranks on a node than it
// has GPUs, after checking that constructing the transport there fails on every
// rank with a clear error; with ZEROTH_REQUIRE_GPU=1 a missing GPU is a failure.
// Every rank runs the same tests in the same order; only rank 0 prints.
#include <cstdint>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "comm/mpi_transport.h"
#include "comm/nccl_transport.h"
#include "core/backend.h"
#include "core/error.h"
#include "tests/mpi/mpi_test_util.h"

namespace zeroth {
namespace {

using test::header_of;
using test::records_of;

MpiSession* g_session = nullptr;

NcclOptions short_deadlines() {
  NcclOptions o;
  o.init_timeout_s = 120;
  o.op_timeout_s = 60;
  return o;
}

void same_commits_as_mpi(const RecordLayout& layout, uint64_t steps) {
  MpiTransport mpi(*g_session);
  NcclTransport nccl(mpi, short_deadlines());
  mpi.set_layout(layout);
  nccl.set_layout(layout);
  for (uint64_t t = 0; t < steps; ++t) {
    std::vector<Record> mine;
    for (const uint32_t m : nccl.hosted()) {
      const auto r = records_of(t, m, layout.slots_of(m), layout.exact);
      mine.insert(mine.end(), r.rbegin(), r.rend());
    }
    const Commit want = mpi.exchange(header_of(t), mine, false);
    const Commit got = nccl.exchange(header_of(t), mine, false);
    ASSERT_EQ(got.entry, want.entry) << "rank " << nccl.rank() << " step " << t;
    EXPECT_EQ(got.stop, want.stop);
    // And what every member sent, independently of the MPI transport.
    StepEntry all = header_of(t);
    all.exact = layout.exact;
    for (uint32_t m = 0; m < layout.members; ++m) {
      const auto r = records_of(t, m, layout.slots_of(m), layout.exact);
      all.records.insert(all.records.end(), r.begin(), r.end());
    }
    ASSERT_EQ(got.entry, all) << "rank " << nccl.rank() << " step " << t;
  }
  EXPECT_EQ(nccl.record_bytes_sent(), mpi.record_bytes_sent());
  EXPECT_FALSE(nccl.aborted());
}

TEST(NcclTransport, ExchangeCommitsWhatTheMpiTransportCommits) {
  same_commits_as_mpi(RecordLayout(5, 3, false), 30);
}

TEST(NcclTransport, ExchangePadsMembersOfDifferentSlotCounts) {
  same_commits_as_mpi(RecordLayout(5, 3, false, {7, 1, 3, 2, 12}), 12);
}

TEST(NcclTransport, ExchangeCarriesExactValues) {
  same_commits_as_mpi(RecordLayout(3, 4, true), 8);
}

TEST(NcclTransport, StopFromTheLastRankStopsEveryoneAtTheSameStep) {
  MpiTransport mpi(*g_session);
  NcclTransport tr(mpi, short_deadlines());
  tr.set_layout({tr.ranks(), 3, false});
  EXPECT_EQ(test::step_stopped_by_last_rank(tr, 3), 6u);
}

TEST(NcclTransport, AllgatherAndBarrierMatchTheMpiTransport) {
  MpiTransport mpi(*g_session);
  NcclTransport tr(mpi, short_deadlines());
  EXPECT_NE(tr.describe().find("NCCL transport: rank"), std::string::npos);
  const std::string mine = tr.rank() == 1 ? "" : std::string(tr.rank() * 1000 + 3, char('a' + tr.rank())) +
                                                     std::string("\0zero", 5);
  EXPECT_EQ(tr.allgather(mine), mpi.allgather(mine));
  EXPECT_EQ(tr.allgather(""), std::vector<std::string>(tr.ranks()));
  const auto all = tr.allgather(mine);
  ASSERT_EQ(all.size(), tr.ranks());
  for (uint32_t r = 0; r < tr.ranks(); ++r)
    EXPECT_EQ(all[r].size(), r == 1 ? 0u : r * 1000 + 8u) << "rank " << r;
  tr.barrier();
  tr.barrier();
  EXPECT_FALSE(tr.aborted());
}

TEST(NcclTransport, APeerThatNeverJoinsGivesAnErrorAtTheDeadlineNotAHang) {
  MpiTransport mpi(*g_session);
  if (mpi.ranks() < 2) GTEST_SKIP() << "needs 2 ranks (and 2 GPUs): a peer to wait for";
  NcclOptions o = short_deadlines();
  o.op_timeout_s = 3;
  NcclTransport tr(mpi, o);
  tr.set_layout({tr.ranks(), 3, false});
  // Rank 0 enters a barrier alone (the others wait in MPI): its deadline passes.
  if (tr.rank() == 0) {
    try {
      tr.barrier();
      ADD_FAILURE() << "a barrier without its peers completed";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("rank 0 of"), std::string::npos) << m;
      EXPECT_NE(m.find("barrier"), std::string::npos) << m;
      EXPECT_NE(m.find("did not complete within 3 s"), std::string::npos) << m;
    }
    EXPECT_TRUE(tr.aborted());
    try {
      tr.exchange(header_of(0), records_of(0, 0, 3, false), false);
      ADD_FAILURE() << "an aborted transport exchanged";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("aborted earlier"), std::string::npos) << e.what();
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // Then the others, whose peer (rank 0) has aborted: an error too, not a hang.
  if (tr.rank() != 0) {
    EXPECT_THROW(tr.barrier(), Error);
    EXPECT_TRUE(tr.aborted());
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// How many ranks share this rank's node.
int ranks_on_node() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int n = 1;
  MPI_Comm_size(node, &n);
  MPI_Comm_free(&node);
  return n;
}

}  // namespace
}  // namespace zeroth

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  zeroth::MpiSession session(&argc, &argv);
  zeroth::g_session = &session;
  const bool leader = session.rank() == 0;
  // Skip (77) on every rank alike, or fail where a GPU is required.
  const int devices = zeroth::cuda_device_count();
  const int on_node = zeroth::ranks_on_node();
  int mine[2] = {devices == 0 ? 1 : 0, on_node > devices ? 1 : 0}, any[2] = {0, 0};
  MPI_Allreduce(mine, any, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  const char* req = std::getenv("ZEROTH_REQUIRE_GPU");
  const bool required = req && *req && std::strcmp(req, "0") != 0;
  if (any[0] || any[1]) {
    // Before skipping: the transport itself refuses this job, on every rank,
    // with the error a user would see (no NCCL call is made).
    const char* expect = any[0] ? "not every rank has a GPU" : "NCCL needs one device per rank";
    std::string got = "(no error)";
    try {
      zeroth::MpiTransport mpi(session);
      zeroth::NcclTransport tr(mpi);
    } catch (const zeroth::Error& e) {
      got = e.what();
    }
    if (got.find(expect) == std::string::npos) {
      std::fprintf(stderr, "FAILED: rank %u: constructing the NCCL transport here should fail with \"%s...\", got: "
                   "%s\n", session.rank(), expect, got.c_str());
      return 1;
    }
    if (leader) std::fprintf(stderr, "as expected, NcclTransport refuses this job: %s\n", got.c_str());
  }
  if (any[0]) {
    if (leader)
      std::fprintf(stderr, "%s: no usable CUDA device on some rank (rank 0: %s)\n",
                   required ? "FAILED (ZEROTH_REQUIRE_GPU is set)" : "SKIPPED", zeroth::cuda_describe().c_str());
    return required ? 1 : 77;
  }
  if (any[1]) {
    if (leader)
      std::fprintf(stderr, "SKIPPED: %d rank(s) on a node with %d GPU(s): the NCCL transport needs one GPU per rank "
                   "(run with -np at most the GPU count)\n", on_node, devices);
    return 77;
  }
  return zeroth::test::run_all_tests_on_every_rank(session);
}
