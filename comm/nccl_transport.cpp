// The NCCL transport (see nccl_transport.h). Compiled only with ZEROTH_HAVE_NCCL.
#include "comm/nccl_transport.h"

#include <cstdint>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <thread>

#include "core/device_array.h"
#include "core/error.h"

namespace zeroth {

struct NcclTransport::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  bool aborted = false;
  std::string abort_reason;
  // Grow-only device buffers: this rank's contribution, everyone's.
  DeviceArray<uint8_t> send, recv;
  // Who we are, for error messages.
  std::string who;

  ~State() {
    if (comm && !aborted) {
      // Flush, then free; a finalize that does not complete is aborted instead.
      const ncclResult_t f = ncclCommFinalize(comm);
      bool clean = f == ncclSuccess || f == ncclInProgress;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (clean) {
        ncclResult_t async = ncclSuccess;
        if (ncclCommGetAsyncError(comm, &async) != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
          clean = false;
          break;
        }
        if (async == ncclSuccess) break;
        if (std::chrono::steady_clock::now() >= deadline) {
          clean = false;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (clean) ncclCommDestroy(comm);
      else ncclCommAbort(comm);
    }
    if (stream) cudaStreamDestroy(stream);
  }

  void abort_comm(const std::string& why) {
    if (comm && !aborted) ncclCommAbort(comm);
    comm = nullptr;
    aborted = true;
    abort_reason = why;
  }

  [[noreturn]] void abort_and_fail(const std::string& why) {
    abort_comm(why);
    fail("NCCL transport, {}: {}; this rank's communicator was aborted", who, why);
  }

  void check_cuda(cudaError_t e, const char* what) {
    if (e != cudaSuccess) abort_and_fail(fmt::format("{} failed: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e)));
  }

  void check_launch(ncclResult_t rc, const std::string& what) {
    if (rc == ncclSuccess || rc == ncclInProgress) return;
    const char* last = comm ? ncclGetLastError(comm) : nullptr;
    abort_and_fail(fmt::format("{} failed: {}{}{}", what, ncclGetErrorString(rc), last && *last ? ": " : "",
                               last ? last : ""));
  }

  void require_live() const {
    if (aborted) fail("NCCL transport, {}: the communicator was aborted earlier ({})", who, abort_reason);
  }

  // Polls the communicator (and, with `stream_too`, the work queued on the
  // stream) until both are done, an error shows up, or `timeout_s` passes.
  // Quick yields first, then sleeps of up to a millisecond, so a waiting rank
  // leaves the host core to others.
  void await(const std::string& what, double timeout_s, bool stream_too) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(timeout_s));
    for (int spin = 0;; ++spin) {
      ncclResult_t async = ncclSuccess;
      const ncclResult_t q = ncclCommGetAsyncError(comm, &async);
      if (q != ncclSuccess) async = q;
      if (async != ncclSuccess && async != ncclInProgress) {
        const char* last = ncclGetLastError(comm);
        abort_and_fail(fmt::format("{} failed: {}{}{}", what, ncclGetErrorString(async), last && *last ? ": " : "",
                                   last ? last : ""));
      }
      bool done = async == ncclSuccess;
      if (done && stream_too) {
        const cudaError_t e = cudaStreamQuery(stream);
        if (e == cudaErrorNotReady) {
          done = false;
        } else if (e != cudaSuccess) {
          abort_and_fail(fmt::format("{} failed on the device: {} ({})", what, cudaGetErrorString(e),
                                     cudaGetErrorName(e)));
        }
      }
      if (done) return;
      if (std::chrono::steady_clock::now() >= deadline)
        abort_and_fail(fmt::format("{} did not complete within {} s (a peer is dead, stuck, or never joined)", what,
                                   timeout_s));
      if (spin < 64) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(spin < 1000 ? 100 : 1000));
    }
  }

  void reserve(size_t send_bytes, size_t recv_bytes) {
    if (send.size() < send_bytes) send = DeviceArray<uint8_t>(send_bytes);
    if (recv.size() < recv_bytes) recv = DeviceArray<uint8_t>(recv_bytes);
  }

  // Every rank's `bytes` bytes at `mine`, rank r's at out[r * bytes].
  void allgather_bytes(const void* mine, size_t bytes, uint32_t ranks, void* out, const std::string& what,
                       double timeout_s) {
    if (bytes == 0) return;
    reserve(bytes, bytes * ranks);
    check_cuda(cudaMemcpyAsync(send.data(), mine, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync h2d");
    check_launch(ncclAllGather(send.data(), recv.data(), bytes, ncclUint8, comm, stream), what);
    await(what, timeout_s, true);
    check_cuda(cudaMemcpyAsync(out, recv.data(), bytes * ranks, cudaMemcpyDeviceToHost, stream),
               "cudaMemcpyAsync d2h");
    await(what + " (copy back)", timeout_s, true);
  }
};

namespace {

// The parts of a rank's "ok DEVICE HOST" setup report.
std::string device_of(const std::string& ok) { return ok.substr(3, ok.find(' ', 3) - 3); }
std::string host_of(const std::string& ok) { return ok.substr(ok.find(' ', 3) + 1); }

}  // namespace

NcclTransport::NcclTransport(MpiTransport& mpi, const NcclOptions& options)
    : s_(std::make_unique<State>()), rank_(mpi.rank()), size_(mpi.ranks()), options_(options) {
  host_ = mpi.host();  // as MPI reports it
  s_->who = fmt::format("rank {} of {} on {}", rank_, size_, host_);

  // 1. Pick the device; every rank learns whether every rank has one before
  //    NCCL is touched, so a rank without a GPU fails the whole job at once.
  const int local = mpi.local_rank();
  std::string problem;
  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  if (ce != cudaSuccess) {
    cudaGetLastError();
    problem = fmt::format("no usable CUDA device ({})", cudaGetErrorString(ce));
  } else if (count == 0) {
    problem = "no CUDA device";
  } else {
    device_ = options_.device >= 0 ? options_.device : local % count;
    if (device_ >= count) problem = fmt::format("device {} asked for, {} present", device_, count);
    else if (const cudaError_t se = cudaSetDevice(device_); se != cudaSuccess)
      problem = fmt::format("cudaSetDevice({}) failed: {}", device_, cudaGetErrorString(se));
  }
  // "ok DEVICE HOST" or "error WHY" from every rank.
  const auto seen = mpi.allgather(problem.empty() ? fmt::format("ok {} {}", device_, host_) : "error " + problem);
  std::string failures;
  for (uint32_t r = 0; r < size_; ++r)
    if (seen[r].rfind("ok ", 0) != 0)
      failures += fmt::format("{}rank {}: {}", failures.empty() ? "" : "; ", r, seen[r].substr(seen[r].find(' ') + 1));
  if (!failures.empty())
    fail("NCCL transport: not every rank has a GPU ({}); the NCCL transport needs one per rank", failures);
  // NCCL refuses two ranks of one communicator on one device; say so plainly.
  for (uint32_t a = 0; a < size_; ++a)
    for (uint32_t b = a + 1; b < size_; ++b)
      if (seen[a] == seen[b])
        fail("NCCL transport: ranks {} and {} would share CUDA device {} on {}: NCCL needs one device per rank "
             "(start at most as many ranks per node as it has GPUs)", a, b, device_of(seen[a]), host_of(seen[a]));
  s_->who += fmt::format(", device {}", device_);

  // 2. Rank 0's unique id reaches every rank (or its failure does).
  std::string id_msg;
  if (rank_ == 0) {
    ncclUniqueId id;
    const ncclResult_t rc = ncclGetUniqueId(&id);
    id_msg = rc == ncclSuccess ? "1" + std::string(reinterpret_cast<const char*>(&id), sizeof id)
                               : std::string("0") + ncclGetErrorString(rc);
  }
  id_msg = mpi.broadcast(id_msg);
  if (id_msg.empty() || id_msg[0] != '1' || id_msg.size() != 1 + sizeof(ncclUniqueId))
    fail("NCCL transport, {}: rank 0 could not create the NCCL unique id: {}", s_->who,
         id_msg.empty() ? std::string("(nothing received)") : id_msg.substr(1));
  ncclUniqueId id;
  std::memcpy(&id, id_msg.data() + 1, sizeof id);

  // 3. The communicator, made with non-blocking init and polled to a deadline.
  s_->check_cuda(cudaStreamCreateWithFlags(&s_->stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  config.commName = "zeroth";
  const ncclResult_t rc = ncclCommInitRankConfig(&s_->comm, int(size_), id, int(rank_), &config);
  if (rc != ncclSuccess && rc != ncclInProgress) {
    // No communicator to ask or abort, unless NCCL handed one back.
    s_->check_launch(rc, "ncclCommInitRankConfig");
  }
  if (!s_->comm) fail("NCCL transport, {}: ncclCommInitRankConfig returned no communicator", s_->who);
  s_->await(fmt::format("creating the NCCL communicator of {} ranks", size_), options_.init_timeout_s, false);
}

NcclTransport::~NcclTransport() {
  if (device_ >= 0) cudaSetDevice(device_);
}

bool NcclTransport::aborted() const { return s_->aborted; }

std::string NcclTransport::describe() const {
  return fmt::format("NCCL transport: rank {} of {} on {}, CUDA device {} (NCCL {})", rank_, size_, host_, device_,
                     NCCL_VERSION_CODE);
}

Commit NcclTransport::exchange(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) {
  s_->require_live();
  s_->check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  // Every rank's message length follows from the layout; all are padded to the
  // longest so one fixed-size allgather carries them.
  std::vector<uint8_t> msg = own_message(header, mine, stop_requested);
  const size_t records_bytes = msg.size() - 1;
  const std::vector<size_t> bytes = participant_message_bytes();
  const size_t longest = *std::max_element(bytes.begin(), bytes.end());
  msg.resize(longest, 0);
  std::vector<uint8_t> all(longest * size_);
  s_->allgather_bytes(msg.data(), longest, size_, all.data(),
                      fmt::format("the allgather of step {}'s records", header.step), options_.op_timeout_s);
  bytes_sent_ += longest;
  record_bytes_ += records_bytes;
  std::vector<const uint8_t*> starts(size_);
  for (uint32_t r = 0; r < size_; ++r) starts[r] = all.data() + size_t(r) * longest;
  return commit_from(header, starts);
}

std::vector<std::string> NcclTransport::allgather(const std::string& value) {
  s_->require_live();
  s_->check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  const int64_t len = int64_t(value.size());
  std::vector<int64_t> lens(size_);
  s_->allgather_bytes(&len, sizeof len, size_, lens.data(), "the allgather of value lengths", options_.op_timeout_s);
  int64_t longest = 0;
  for (uint32_t r = 0; r < size_; ++r) {
    ZEROTH_CHECK(lens[r] >= 0 && lens[r] < (int64_t(1) << 30), "rank {} sent a value of {} bytes", r, lens[r]);
    longest = std::max(longest, lens[r]);
  }
  ZEROTH_CHECK(longest * int64_t(size_) < (int64_t(1) << 31), "allgather of {} bytes per rank on {} ranks is too large",
               longest, size_);
  std::string padded = value;
  padded.resize(size_t(longest), '\0');
  std::string all(size_t(longest) * size_, '\0');
  s_->allgather_bytes(padded.data(), size_t(longest), size_, all.data(), "the allgather of values",
                      options_.op_timeout_s);
  bytes_sent_ += sizeof len + size_t(longest);
  std::vector<std::string> out(size_);
  for (uint32_t r = 0; r < size_; ++r) out[r] = all.substr(size_t(r) * size_t(longest), size_t(lens[r]));
  return out;
}

void NcclTransport::barrier() {
  s_->require_live();
  s_->check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  s_->reserve(1, 1);
  s_->check_launch(ncclAllReduce(s_->send.data(), s_->recv.data(), 1, ncclUint8, ncclSum, s_->comm, s_->stream),
                   "the barrier (a one-byte allreduce)");
  s_->await("the barrier (a one-byte allreduce)", options_.op_timeout_s, true);
  bytes_sent_ += 1;
}

void NcclTransport::abort(const std::string& why) {
  std::fprintf(stderr, "zeroth: %s failed: %s\nzeroth: aborting its NCCL communicator; the other ranks end with an "
               "error at their next collective's deadline\n", s_->who.c_str(), why.c_str());
  std::fflush(stderr);
  s_->abort_comm(why);
}

}  // namespace zeroth
