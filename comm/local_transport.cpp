#include "comm/local_transport.h"

#include <cstdint>
#include <fmt/format.h>

#include "core/error.h"

namespace zeroth {

LocalGroup::LocalGroup(uint32_t members)
    : members_(members), barrier_(std::ptrdiff_t(members)), inbox_(members), stop_(members, false), values_(members) {}

LocalTransport::LocalTransport(std::shared_ptr<LocalGroup> group, uint32_t member)
    : group_(std::move(group)), member_(member) {}

std::string LocalTransport::describe() const {
  return fmt::format("local transport: member {} of {} (threads in one process)", member_, group_->members());
}

Commit LocalTransport::exchange(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) {
  auto& g = *group_;
  // Gather: each member posts its wire message.
  std::vector<uint8_t> msg = encode_participant_records(header.step, header.epoch, hosted(), layout_, mine);
  bytes_sent_ += msg.size();
  record_bytes_ += msg.size();
  {
    std::lock_guard lock(g.mu_);
    g.inbox_[member_] = std::move(msg);
    g.stop_[member_] = stop_requested;
  }
  wait();
  // Commit: member 0 decodes every message and builds the entry.
  if (member_ == 0) {
    Commit c;
    c.entry = header;
    c.entry.records.clear();
    for (uint32_t m = 0; m < g.members_; ++m) {
      const auto recs = decode_participant_records(g.inbox_[m].data(), g.inbox_[m].size(), header.step, hosted_by(m),
                                                   layout_);
      c.entry.records.insert(c.entry.records.end(), recs.begin(), recs.end());
      c.stop = c.stop || g.stop_[m];
    }
    c.entry.exact = layout_.exact;
    c.entry.sort_records();
    g.commit_ = std::move(c);
  }
  wait();
  Commit out = g.commit_;  // every member copies the committed entry
  wait();  // nobody overwrites inbox/commit before all have read
  return out;
}

void LocalTransport::wait() {
  group_->barrier_.arrive_and_wait();
  std::lock_guard lock(group_->mu_);
  if (!group_->failed_.empty()) throw Error("stopping: " + group_->failed_);
}

void LocalTransport::barrier() { wait(); }

void LocalTransport::abort(const std::string& why) {
  if (dropped_) return;
  dropped_ = true;
  {
    std::lock_guard lock(group_->mu_);
    if (group_->failed_.empty()) group_->failed_ = fmt::format("member {} failed: {}", member_, why);
  }
  group_->barrier_.arrive_and_drop();
}

std::vector<std::string> LocalTransport::allgather(const std::string& value) {
  auto& g = *group_;
  {
    std::lock_guard lock(g.mu_);
    g.values_[member_] = value;
    bytes_sent_ += value.size();
  }
  wait();
  std::vector<std::string> out = g.values_;
  wait();
  return out;
}

}  // namespace zeroth
