#include "comm/mpi_transport.h"

#include <cstdint>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <thread>

#include "core/error.h"

namespace zeroth {
namespace {

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(fmt::format("MPI {} failed: {}", what, std::string(text, size_t(len))));
}

// Completes `req`, polling: a few quick tests, then sleeps of up to a
// millisecond, so a waiting rank leaves its core to the ranks that compute.
void complete(MPI_Request& req, const char* what) {
  int done = 0;
  for (int spin = 0;; ++spin) {
    check_mpi(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (spin < 64) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(spin < 1000 ? 100 : 1000));
  }
}

}  // namespace

bool launched_by_mpi() {
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK") || env_set("PMI_SIZE");
}

int mpi_local_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
    if (env_set(name)) {
      const int n = std::atoi(std::getenv(name));
      if (n >= 1) return n;
    }
  return 1;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "initialization");
  // Errors come back as codes (turned into zeroth::Error) instead of aborting.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int r = 0, s = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  rank_ = uint32_t(r);
  size_ = uint32_t(s);
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  host_.assign(name, size_t(len));
  MPI_Comm node;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "Comm_split_type");
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_free(&node);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

MpiTransport::MpiTransport(const MpiSession& session)
    : rank_(session.rank()), size_(session.size()), local_rank_(session.local_rank()), host_(session.host()) {}

std::string MpiTransport::describe() const {
  return fmt::format("MPI transport: rank {} of {} on {}", rank_, size_, host_);
}

Commit MpiTransport::exchange(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) {
  // Every rank's message length follows from the layout: no length exchange.
  const std::vector<uint8_t> msg = own_message(header, mine, stop_requested);
  const std::vector<size_t> bytes = participant_message_bytes();
  std::vector<int> counts(size_), displs(size_);
  size_t total = 0;
  for (uint32_t r = 0; r < size_; ++r) {
    counts[r] = int(bytes[r]);
    displs[r] = int(total);
    total += bytes[r];
  }
  std::vector<uint8_t> all(total);
  MPI_Request req;
  check_mpi(MPI_Iallgatherv(msg.data(), counts[rank_], MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                            MPI_COMM_WORLD, &req),
            "allgather of records");
  complete(req, "allgather of records");
  bytes_sent_ += msg.size();
  record_bytes_ += msg.size() - 1;
  std::vector<const uint8_t*> starts(size_);
  for (uint32_t r = 0; r < size_; ++r) starts[r] = all.data() + displs[r];
  return commit_from(header, starts);
}

std::vector<std::string> MpiTransport::allgather(const std::string& value) {
  int64_t len = int64_t(value.size());
  std::vector<int64_t> lens(size_);
  MPI_Request req;
  check_mpi(MPI_Iallgather(&len, 1, MPI_INT64_T, lens.data(), 1, MPI_INT64_T, MPI_COMM_WORLD, &req), "allgather");
  complete(req, "allgather");
  std::vector<int> counts(size_), displs(size_);
  int64_t total = 0;
  for (uint32_t r = 0; r < size_; ++r) {
    ZEROTH_CHECK(lens[r] >= 0 && lens[r] < (int64_t(1) << 30), "rank {} sent a value of {} bytes", r, lens[r]);
    counts[r] = int(lens[r]);
    displs[r] = int(total);
    total += lens[r];
    ZEROTH_CHECK(total < (int64_t(1) << 31), "allgather of {} bytes in all is too large", total);
  }
  std::string all(size_t(total), '\0');
  check_mpi(MPI_Iallgatherv(value.data(), counts[rank_], MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                            MPI_COMM_WORLD, &req),
            "allgather");
  complete(req, "allgather");
  bytes_sent_ += sizeof(len) + value.size();
  std::vector<std::string> out(size_);
  for (uint32_t r = 0; r < size_; ++r) out[r] = all.substr(size_t(displs[r]), size_t(counts[r]));
  return out;
}

std::string MpiTransport::broadcast(const std::string& value) {
  int64_t len = rank_ == 0 ? int64_t(value.size()) : 0;
  MPI_Request req;
  check_mpi(MPI_Ibcast(&len, 1, MPI_INT64_T, 0, MPI_COMM_WORLD, &req), "broadcast");
  complete(req, "broadcast");
  ZEROTH_CHECK(len >= 0 && len < (int64_t(1) << 31), "broadcast of {} bytes is too large", len);
  std::string out = rank_ == 0 ? value : std::string(size_t(len), '\0');
  check_mpi(MPI_Ibcast(out.data(), int(len), MPI_BYTE, 0, MPI_COMM_WORLD, &req), "broadcast");
  complete(req, "broadcast");
  if (rank_ == 0) bytes_sent_ += sizeof(len) + value.size();
  return out;
}

void MpiTransport::barrier() {
  MPI_Request req;
  check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &req), "barrier");
  complete(req, "barrier");
}

void MpiTransport::abort(const std::string& why) {
  std::fprintf(stderr, "zeroth: rank %u of %u (%s) failed: %s\nzeroth: ending the MPI job (Open MPI 4.1 has no ULFM: "
               "one rank's failure ends all); continue it with `zeroth train CONFIG --resume RUN_DIR`\n",
               rank_, size_, host_.c_str(), why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

}  // namespace zeroth
