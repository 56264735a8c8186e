// The MPI transport: the ranks of an `mpirun` job are the participants of a
// run. Every rank contributes its hosted members' records (one byte per slot
// plus a 28-byte header per member) through one allgather; every rank then
// decodes the same messages and builds the same StepEntry, so there is no
// separate commit round. Waits poll nonblocking collectives with short sleeps,
// so ranks that wait (for the leader's evaluation, or on an oversubscribed
// machine) do not spin a core.
//
// Debian's Open MPI 4.1 has no ULFM (fault-tolerant MPI): a rank that dies
// ends the job. abort() therefore calls MPI_Abort, and runs resume from the
// ledger instead.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "comm/transport.h"

namespace zeroth {

// Whether this process was started by an MPI launcher (mpirun/mpiexec of Open
// MPI, or a PMI/PMIx launcher such as srun), judged from its environment, so
// a plain `zeroth train` never initializes MPI.
bool launched_by_mpi();
// Ranks the launcher placed on this node (1 if it does not say).
int mpi_local_ranks();

// MPI_Init_thread (funneled: only the main thread calls MPI) and, on
// destruction, MPI_Finalize. One per process.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  uint32_t rank() const { return rank_; }
  uint32_t size() const { return size_; }
  const std::string& host() const { return host_; }
  // This rank's index among the ranks of its node (MPI_COMM_TYPE_SHARED): GPU
  // ranks take GPU local_rank mod GPUs.
  int local_rank() const { return local_rank_; }

 private:
  uint32_t rank_ = 0, size_ = 1;
  int local_rank_ = 0;
  std::string host_;
};

class MpiTransport : public Transport {
 public:
  explicit MpiTransport(const MpiSession& session);
  uint32_t rank() const override { return rank_; }
  uint32_t ranks() const override { return size_; }
  std::string describe() const override;
  const char* noun() const override { return "rank"; }

  Commit exchange(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) override;
  std::vector<std::string> allgather(const std::string& value) override;
  void barrier() override;
  // Ends the whole job (MPI_Abort): without ULFM the others cannot go on.
  [[noreturn]] void abort(const std::string& why) override;
  // Rank 0's `value` on every rank.
  std::string broadcast(const std::string& value);
  int local_rank() const { return local_rank_; }  // MpiSession::local_rank
  const std::string& host() const { return host_; }

 private:
  uint32_t rank_, size_;
  int local_rank_;
  std::string host_;
};

}  // namespace zeroth
