// The step protocol every transport implements (local threads, MPI, TCP, NCCL):
//   1. step t starts with its membership and codec scale known to everyone;
//   2. each member computes its records at θ_t;
//   3. gather: every member's records reach the committer;
//   4. commit: one StepEntry, records sorted by (member, slot), identical on
//      every member;
//   5. apply → θ_{t+1}; hashes compared every K steps.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "optim/ledger.h"

namespace zeroth {

struct Commit {
  StepEntry entry;
  bool stop = false;  // some member asked to stop: everyone stops after applying this entry
};

// What a step's records look like: `members` logical members (the global
// sample and perturbation assignment a config fixes), `slots` records each
// (or, where roles differ, member m has member_slots[m]: a gradient member's
// one backward pays for many projections), one byte (or 4 for exact fp32
// comparison runs) per slot, twice that with HiZOO's curvature codes.
struct RecordLayout {
  RecordLayout() = default;
  RecordLayout(uint32_t members_, uint32_t slots_, bool exact_, std::vector<uint32_t> member_slots_ = {})
      : members(members_), slots(slots_), exact(exact_), member_slots(std::move(member_slots_)) {}
  uint32_t members = 1;
  uint32_t slots = 1;
  bool exact = false;
  std::vector<uint32_t> member_slots;  // empty: `slots` for every member
  bool curvature = false;              // each slot also carries a RecordKind::Curvature code (HiZOO)
  uint32_t slots_of(uint32_t member) const {
    return member < member_slots.size() ? member_slots[member] : slots;
  }
  // Bytes of member m's records message.
  size_t message_bytes(uint32_t member) const;
};

// A transport connects participants (threads of the local transport, MPI
// ranks, TCP workers). Participant p hosts the logical members m with
// m % participants == p, so a run's ledger does not depend on how many
// processes share its members.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual uint32_t rank() const = 0;   // this participant
  virtual uint32_t ranks() const = 0;  // participants in the run
  bool is_leader() const { return rank() == 0; }
  virtual std::string describe() const = 0;
  // How participants are called in messages: "member", "rank", "worker".
  virtual const char* noun() const { return "member"; }

  // Must be set before the first exchange; layout.members >= ranks().
  void set_layout(const RecordLayout& layout);
  const RecordLayout& layout() const { return layout_; }
  // The logical members this participant hosts, ascending.
  std::vector<uint32_t> hosted() const { return hosted_by(rank()); }
  std::vector<uint32_t> hosted_by(uint32_t participant) const;

  // Steps 3–4: contributes the records of every hosted member for
  // `header.step` (header carries step, epoch, scale, lr) and returns the
  // committed entry, identical on every participant.
  virtual Commit exchange(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) = 0;
  // Every participant's value, indexed by participant (hash checks, losses).
  virtual std::vector<std::string> allgather(const std::string& value) = 0;
  virtual void barrier() = 0;
  // This participant failed: release everyone waiting on it, so the group ends
  // with an error instead of a hang.
  virtual void abort(const std::string& why) = 0;

  // Payload bytes this member has put on the wire so far: all of it, and the
  // records messages of the step protocol alone (the one-byte-per-sample part).
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t record_bytes_sent() const { return record_bytes_; }

 protected:
  // For transports that gather whole participant messages (MPI, NCCL): each
  // participant's message is its records message then one stop byte.
  // Bytes of each participant's message, by participant.
  std::vector<size_t> participant_message_bytes() const;
  // This participant's message for `header.step`.
  std::vector<uint8_t> own_message(const StepEntry& header, const std::vector<Record>& mine, bool stop_requested) const;
  // The committed entry from every participant's message (message r at
  // starts[r], participant_message_bytes()[r] long): records decoded and sorted,
  // stop set if anyone asked.
  Commit commit_from(const StepEntry& header, const std::vector<const uint8_t*>& starts) const;

  RecordLayout layout_;
  uint64_t bytes_sent_ = 0;
  uint64_t record_bytes_ = 0;
};

// The wire form of one member's contribution to a step: a 28-byte header
// (magic "ZRC1", step, epoch, member, slot count, flags: bit 0 exact fp32 values,
// bit 1 the records are gradient projections ⟨∇L, z⟩ rather than zeroth-order
// differences, bit 2 HiZOO's curvature codes follow; other bits are rejected)
// then ONE BYTE PER SLOT: the codec code, or 0x80 (the code the codec never
// emits) for a slot whose gradient was dropped as non-finite. Exact (fp32
// comparison) runs send 4 bytes per slot instead. Slots are implied by
// position: 0 .. count-1. With bit 2 a second block of the same width follows:
// each slot's RecordKind::Curvature code (or 0x80 / NaN where none was sent).
constexpr size_t kMemberRecordsHeader = 28;
// Bytes of one member's message of `slots` slots.
size_t member_records_bytes(uint32_t slots, bool exact, bool curvature);
// `curvature`: the message carries the curvature block (a run with HiZOO's
// rule), whichever records of that kind are present.
std::vector<uint8_t> encode_member_records(uint64_t step, uint32_t epoch, uint32_t member, uint32_t slots,
                                           bool exact, const std::vector<Record>& records, bool curvature = false);
// Throws zeroth::Error naming what is malformed (never trusts counts).
std::vector<Record> decode_member_records(const uint8_t* data, size_t n, uint64_t expect_step, uint32_t expect_member);

// A participant's message: the messages of its hosted members, in order.
std::vector<uint8_t> encode_participant_records(uint64_t step, uint32_t epoch, const std::vector<uint32_t>& hosted,
                                                const RecordLayout& layout, const std::vector<Record>& records);
// Decodes one participant's message, which must hold exactly the members
// `hosted`, each with layout.slots_of(member) slots in layout's width.
std::vector<Record> decode_participant_records(const uint8_t* data, size_t n, uint64_t expect_step,
                                               const std::vector<uint32_t>& hosted, const RecordLayout& layout);

}  // namespace zeroth
