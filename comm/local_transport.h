// The local transport: N members in one process, one thread each, going
// through the same gather → commit → apply protocol (and the same wire bytes)
// the MPI and TCP transports use. Member 0 commits. Each thread hosts the
// logical members its index selects (one, when there are as many threads as
// members).
#pragma once
#include <barrier>
#include <cstdint>
#include <memory>
#include <mutex>

#include "comm/transport.h"

namespace zeroth {

class LocalGroup {
 public:
  explicit LocalGroup(uint32_t members);
  uint32_t members() const { return members_; }

 private:
  friend class LocalTransport;
  uint32_t members_;
  std::barrier<> barrier_;
  std::mutex mu_;
  std::vector<std::vector<uint8_t>> inbox_;  // per member: its records message of the step
  std::vector<bool> stop_;
  std::vector<std::string> values_;
  Commit commit_;
  std::string failed_;  // non-empty once a member aborted: why
};

class LocalTransport : public Transport {
 public:
  LocalTransport(std::shared_ptr<LocalGroup> group, uint32_t member);
  uint32_t rank() const override { return member_; }
  uint32_t ranks() const override { return group_->members(); }
  std::string describe() const override;
  Commit exchange(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) override;
  std::vector<std::string> allgather(const std::string& value) override;
  void barrier() override;
  void abort(const std::string& why) override;

 private:
  std::shared_ptr<LocalGroup> group_;
  uint32_t member_;
  void wait();  // the group barrier, then throws if a member aborted
  bool dropped_ = false;
};

}  // namespace zeroth
