// Shared by the transport tests that run under mpirun (MPI, NCCL): a step's
// header and a member's records made up from (step, member), and the main's
// common end (only rank 0 prints; any rank's failure fails the job).
#pragma once
#include <cstdint>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <vector>

#include "comm/mpi_transport.h"
#include "comm/transport.h"
#include "optim/ledger.h"

namespace zeroth::test {

// Member m's records at step t over `slots` slots, some dropped: codes
// (never 0x80, the dropped code), or exact fp32 values.
inline std::vector<Record> records_of(uint64_t t, uint32_t m, uint32_t slots, bool exact = false) {
  std::vector<Record> out;
  for (uint32_t s = 0; s < slots; ++s) {
    if ((t + m + s) % 4 == 0) continue;  // some slots dropped
    Record r;
    r.member = m;
    r.slot = s;
    if (exact) {
      r.exact = true;
      r.value = float(t) * 0.25f - float(m) + float(s) * 1e-3f;
    } else {
      r.code = uint8_t((t * 31 + m * 7 + s * 3) % 255);
      if (r.code == 0x80) r.code = 1;
    }
    out.push_back(r);
  }
  return out;
}

inline StepEntry header_of(uint64_t t) {
  StepEntry h;
  h.step = t;
  h.epoch = 2;
  h.scale = 0.5f + float(t);
  h.lr = 1e-3f;
  return h;
}

// Steps exchanged on `tr` (its layout set, `slots` per member) with the last
// rank asking to stop from step 6 on: the step at which the commit says stop
// (every rank must see 6), or 20 if it never does.
inline uint64_t step_stopped_by_last_rank(Transport& tr, uint32_t slots) {
  for (uint64_t t = 0; t < 20; ++t)
    if (tr.exchange(header_of(t), records_of(t, tr.rank(), slots), tr.rank() + 1 == tr.ranks() && t >= 6).stop)
      return t;
  return 20;
}

// RUN_ALL_TESTS on every rank, printing on rank 0 only; 1 if any rank failed.
inline int run_all_tests_on_every_rank(const MpiSession& session) {
  if (session.rank() != 0) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any && session.rank() == 0) std::fprintf(stderr, "FAILED on at least one rank\n");
  return any ? 1 : 0;
}

}  // namespace zeroth::test
