// The wire form of a member's records (see transport.h).
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "comm/transport.h"
#include "core/error.h"

namespace zeroth {
namespace {

constexpr uint32_t kMagic = 0x3143525a;  // "ZRC1"
constexpr uint8_t kDroppedCode = 0x80;
constexpr uint8_t kFlagExact = 1;
constexpr uint8_t kFlagGradient = 2;  // the records are exact projections ⟨∇L, z⟩ (RecordKind::Gradient)
constexpr uint8_t kFlagCurvature = 4;  // a second block of per-slot RecordKind::Curvature codes follows

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(uint8_t(uint64_t(v) >> (8 * i)));
}
template <typename T>
T get(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(p[i]) << (8 * i);
  return T(v);
}

}  // namespace

size_t member_records_bytes(uint32_t slots, bool exact, bool curvature) {
  return kMemberRecordsHeader + size_t(slots) * (exact ? 4 : 1) * (curvature ? 2 : 1);
}

std::vector<uint8_t> encode_member_records(uint64_t step, uint32_t epoch, uint32_t member, uint32_t slots, bool exact,
                                           const std::vector<Record>& records, bool curvature) {
  // One kind per member and step: a message's records all came from one way of
  // computing them (no records at all: the zeroth-order default); curvature
  // records ride beside zeroth-order ones in their own block.
  RecordKind kind = RecordKind::ZerothOrder;
  for (const Record& r : records)
    if (r.kind != RecordKind::Curvature) {
      kind = r.kind;
      break;
    }
  for (const Record& r : records) {
    ZEROTH_CHECK(r.kind == kind || r.kind == RecordKind::Curvature,
                 "member {}'s records mix zeroth-order and gradient kinds in one step", member);
    ZEROTH_CHECK(r.kind != RecordKind::Curvature || curvature,
                 "member {} has curvature records but the run's records carry none (optimizer.rule hizoo)", member);
  }
  ZEROTH_CHECK(!curvature || kind == RecordKind::ZerothOrder,
               "member {}: curvature records go with zeroth-order records only", member);
  const size_t width = exact ? 4 : 1, block = size_t(slots) * width;
  std::vector<uint8_t> out;
  out.reserve(member_records_bytes(slots, exact, curvature));
  put(out, kMagic);
  put(out, step);
  put(out, epoch);
  put(out, member);
  put(out, slots);
  put(out, uint8_t((exact ? kFlagExact : 0) | (kind == RecordKind::Gradient ? kFlagGradient : 0) |
                   (curvature ? kFlagCurvature : 0)));
  put(out, uint8_t(0));
  put(out, uint16_t(0));
  const size_t body = out.size();
  out.resize(member_records_bytes(slots, exact, curvature), kDroppedCode);
  if (exact) {
    const float nan = std::nanf("");
    for (size_t s = 0; s < size_t(slots) * (curvature ? 2 : 1); ++s) std::memcpy(&out[body + 4 * s], &nan, 4);
  }
  for (const Record& r : records) {
    ZEROTH_CHECK(r.member == member && r.slot < slots, "record (member {}, slot {}) does not belong in member {}'s "
                 "{} slots", r.member, r.slot, member, slots);
    const size_t at = body + (r.kind == RecordKind::Curvature ? block : 0) + width * r.slot;
    if (exact) std::memcpy(&out[at], &r.value, 4);
    else out[at] = r.code;
  }
  return out;
}

std::vector<Record> decode_member_records(const uint8_t* data, size_t n, uint64_t expect_step, uint32_t expect_member) {
  ZEROTH_CHECK(n >= kMemberRecordsHeader, "records message of {} bytes is shorter than its {}-byte header", n,
               kMemberRecordsHeader);
  ZEROTH_CHECK(get<uint32_t>(data) == kMagic, "records message has a bad magic number");
  const auto step = get<uint64_t>(data + 4);
  const auto member = get<uint32_t>(data + 16);
  const auto slots = get<uint32_t>(data + 20);
  const uint8_t flags = data[24];
  ZEROTH_CHECK(step == expect_step, "records message is for step {}, expected step {}", step, expect_step);
  ZEROTH_CHECK(member == expect_member, "records message claims member {}, expected member {}", member, expect_member);
  ZEROTH_CHECK((flags & ~(kFlagExact | kFlagGradient | kFlagCurvature)) == 0, "records message has unknown flags {:#x}",
               flags);
  const bool exact = flags & kFlagExact, curvature = flags & kFlagCurvature;
  const RecordKind kind = (flags & kFlagGradient) ? RecordKind::Gradient : RecordKind::ZerothOrder;
  ZEROTH_CHECK(!curvature || kind == RecordKind::ZerothOrder,
               "records message has curvature codes beside gradient projections (flags {:#x})", flags);
  const size_t per = exact ? 4 : 1;
  ZEROTH_CHECK(n == member_records_bytes(slots, exact, curvature),
               "records message of {} bytes does not hold its {} slots", n, slots);
  std::vector<Record> out;
  for (uint32_t s = 0; s < slots; ++s)
    for (int block = 0; block < (curvature ? 2 : 1); ++block) {  // (member, slot, kind) order
      const uint8_t* p = data + kMemberRecordsHeader + (size_t(block) * slots + s) * per;
      Record r;
      r.member = member;
      r.slot = s;
      r.kind = block == 0 ? kind : RecordKind::Curvature;
      if (exact) {
        std::memcpy(&r.value, p, 4);
        if (!std::isfinite(r.value)) continue;
        r.exact = true;
      } else {
        if (*p == kDroppedCode) continue;
        r.code = *p;
      }
      out.push_back(r);
    }
  return out;
}

std::vector<uint8_t> encode_participant_records(uint64_t step, uint32_t epoch, const std::vector<uint32_t>& hosted,
                                                const RecordLayout& layout, const std::vector<Record>& records) {
  std::vector<uint8_t> out;
  std::vector<Record> mine;
  for (const uint32_t m : hosted) {
    mine.clear();
    for (const Record& r : records)
      if (r.member == m) mine.push_back(r);
    const auto msg = encode_member_records(step, epoch, m, layout.slots_of(m), layout.exact, mine, layout.curvature);
    out.insert(out.end(), msg.begin(), msg.end());
  }
  size_t placed = 0;
  for (const Record& r : records)
    placed += std::find(hosted.begin(), hosted.end(), r.member) != hosted.end();
  ZEROTH_CHECK(placed == records.size(), "{} record(s) belong to members this participant does not host",
               records.size() - placed);
  return out;
}

std::vector<Record> decode_participant_records(const uint8_t* data, size_t n, uint64_t expect_step,
                                               const std::vector<uint32_t>& hosted, const RecordLayout& layout) {
  size_t expect = 0;
  for (const uint32_t m : hosted) expect += layout.message_bytes(m);
  ZEROTH_CHECK(n == expect, "a participant's records message of {} bytes should hold {} member(s) in {} bytes", n,
               hosted.size(), expect);
  std::vector<Record> out;
  const uint8_t* p = data;
  for (const uint32_t m : hosted) {
    const size_t each = layout.message_bytes(m);
    ZEROTH_CHECK(get<uint32_t>(p + 20) == layout.slots_of(m) && bool(p[24] & kFlagExact) == layout.exact &&
                     bool(p[24] & kFlagCurvature) == layout.curvature,
                 "member {}'s records message has {} slot(s){}{}, expected {}{}{}", m, get<uint32_t>(p + 20),
                 (p[24] & kFlagExact) ? " (exact)" : "", (p[24] & kFlagCurvature) ? " with curvature" : "",
                 layout.slots_of(m), layout.exact ? " (exact)" : "", layout.curvature ? " with curvature" : "");
    const auto recs = decode_member_records(p, each, expect_step, m);
    out.insert(out.end(), recs.begin(), recs.end());
    p += each;
  }
  return out;
}

size_t RecordLayout::message_bytes(uint32_t member) const {
  return member_records_bytes(slots_of(member), exact, curvature);
}

void Transport::set_layout(const RecordLayout& layout) {
  ZEROTH_CHECK(layout.members >= ranks(), "{} logical members cannot be shared by {} {}s: each needs at least one",
               layout.members, ranks(), noun());
  ZEROTH_CHECK(layout.slots >= 1, "a member needs at least one slot");
  ZEROTH_CHECK(layout.member_slots.empty() || layout.member_slots.size() == layout.members,
               "the layout gives {} members' slot counts for {} members", layout.member_slots.size(), layout.members);
  for (size_t m = 0; m < layout.member_slots.size(); ++m)
    ZEROTH_CHECK(layout.member_slots[m] >= 1, "member {} needs at least one slot", m);
  layout_ = layout;
}

std::vector<size_t> Transport::participant_message_bytes() const {
  std::vector<size_t> out(ranks());
  for (uint32_t r = 0; r < ranks(); ++r) {
    size_t bytes = 1;
    for (const uint32_t m : hosted_by(r)) bytes += layout_.message_bytes(m);
    out[r] = bytes;
  }
  return out;
}

std::vector<uint8_t> Transport::own_message(const StepEntry& header, const std::vector<Record>& mine,
                                            bool stop_requested) const {
  std::vector<uint8_t> msg = encode_participant_records(header.step, header.epoch, hosted(), layout_, mine);
  msg.push_back(stop_requested ? 1 : 0);  // this participant asks everyone to stop after this step
  const size_t want = participant_message_bytes()[rank()];
  ZEROTH_CHECK(msg.size() == want, "{} {}: records message of {} bytes, layout says {}", noun(), rank(), msg.size(),
               want);
  return msg;
}

Commit Transport::commit_from(const StepEntry& header, const std::vector<const uint8_t*>& starts) const {
  const std::vector<size_t> bytes = participant_message_bytes();
  ZEROTH_CHECK(starts.size() == bytes.size(), "commit_from: {} messages for {} participants", starts.size(),
               bytes.size());
  Commit c;
  c.entry = header;
  c.entry.records.clear();
  c.entry.exact = layout_.exact;
  for (uint32_t r = 0; r < ranks(); ++r) {
    const size_t n = bytes[r] - 1;
    const auto recs = decode_participant_records(starts[r], n, header.step, hosted_by(r), layout_);
    c.entry.records.insert(c.entry.records.end(), recs.begin(), recs.end());
    c.stop = c.stop || starts[r][n] != 0;
  }
  c.entry.sort_records();
  return c;
}

std::vector<uint32_t> Transport::hosted_by(uint32_t participant) const {
  std::vector<uint32_t> out;
  for (uint32_t m = participant; m < layout_.members; m += ranks()) out.push_back(m);
  return out;
}

}  // namespace zeroth
