// The NCCL transport, for GPU-only jobs started by `mpirun`: one rank per GPU,
// the records of a step gathered over NCCL between device buffers instead of
// through MPI. MPI is used only to set the communicator up (rank 0's
// ncclUniqueId is broadcast through MpiTransport) and to agree, before NCCL is
// touched, that every rank found a device.
//
// No wait can hang: the communicator is made with non-blocking init
// (ncclConfig_t::blocking = 0), and init and every collective are polled
// (ncclCommGetAsyncError, cudaStreamQuery) against a deadline. A deadline that
// passes aborts the communicator (ncclCommAbort) and throws a zeroth::Error
// naming this rank and what it waited for: a dead or stuck peer gives an
// error, not a hang. An aborted transport refuses further calls.
//
// Compiled only where the build has the CUDA backend and finds NCCL
// (ZEROTH_HAVE_NCCL); otherwise this header's class has no definition.
// Status: run on an H100 at np 1 (device-check); the dead-peer deadline test
// needs 2 GPUs and has not run yet.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "comm/mpi_transport.h"
#include "comm/transport.h"

namespace zeroth {

struct NcclOptions {
  // Communicator creation (every rank must reach it).
  double init_timeout_s = 300;
  // One collective, from launch to completion. Ranks enter a step's exchange at
  // different times (the leader may be evaluating), so this bounds the skew
  // between ranks as well as the transfer.
  double op_timeout_s = 600;
  // The CUDA device; -1: the rank's index among the ranks of its node, modulo
  // the node's device count.
  int device = -1;
};

class NcclTransport : public Transport {
 public:
  // Collective over the MPI job: every rank constructs one, in the same order.
  // Throws zeroth::Error (on every rank) if any rank has no usable device.
  NcclTransport(MpiTransport& mpi, const NcclOptions& options = {});
  ~NcclTransport() override;
  NcclTransport(const NcclTransport&) = delete;
  NcclTransport& operator=(const NcclTransport&) = delete;

  uint32_t rank() const override { return rank_; }
  uint32_t ranks() const override { return size_; }
  std::string describe() const override;
  const char* noun() const override { return "rank"; }
  int device() const { return device_; }

  Commit exchange(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) override;
  std::vector<std::string> allgather(const std::string& value) override;
  void barrier() override;
  // Aborts this rank's communicator (ncclCommAbort). Peers then fail at their
  // next collective's deadline; the process is not ended.
  void abort(const std::string& why) override;
  bool aborted() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
  uint32_t rank_ = 0, size_ = 1;
  int device_ = -1;
  std::string host_;
  NcclOptions options_;
};

}  // namespace zeroth
