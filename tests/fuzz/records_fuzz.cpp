// Fuzz target: the records messages of the step protocol (comm/transport.h),
// which arrive from other members (Result frames over TCP, MPI ranks).
//
// Input: a 4-byte prefix, then the message.
//   p0  bit 0: a participant's message (decode_participant_records), else one
//              member's (decode_member_records)
//       bit 1: the participant layout is exact (4 bytes per slot)
//       bit 2: expect step 7 and member p2, instead of what the message claims
//              (so both the mismatch checks and the paths after them are reached)
//       bit 3: the participant layout carries HiZOO's curvature block
//   p1  participants (1 + p1 % 4) and members per participant (1 + (p1 / 4) % 3)
//   p2  this participant's rank (p2 % participants)
//   p3  slots per member (1 + p3 % 64)
// The layout plays the receiver's config, which is trusted; the message is not.
// Contract: decode, or throw zeroth::Error. Beyond it: what decodes, encoded
// again, decodes to the same records.
#include <cstdint>
#include <cstring>
#include <vector>

#include "comm/transport.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using zeroth::Record;
using zeroth::RecordLayout;

uint64_t le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

void member(const uint8_t* msg, size_t n, bool own_claims, uint32_t rank) {
  const uint64_t step = own_claims && n >= 12 ? le(msg + 4, 8) : 7;
  const uint32_t who = own_claims && n >= 20 ? uint32_t(le(msg + 16, 4)) : rank;
  const std::vector<Record> recs = zeroth::decode_member_records(msg, n, step, who);
  // It decoded, so the header is whole: slots and the exact flag are in it.
  const uint32_t slots = uint32_t(le(msg + 20, 4));
  const bool exact = msg[24] & 1, curvature = msg[24] & 4;
  const auto again = zeroth::encode_member_records(step, 0, who, slots, exact, recs, curvature);
  ZEROTH_FUZZ_REQUIRE(zeroth::decode_member_records(again.data(), again.size(), step, who) == recs,
                      "member records do not survive encode(decode(message))");
}

void participant(const uint8_t* msg, size_t n, bool own_claims, const uint8_t* prefix) {
  const uint32_t ranks = 1 + prefix[1] % 4, per = 1 + (prefix[1] / 4) % 3, rank = prefix[2] % ranks;
  RecordLayout layout;
  layout.members = ranks * per;
  layout.slots = 1 + prefix[3] % 64;
  layout.exact = prefix[0] & 2;
  layout.curvature = prefix[0] & 8;
  std::vector<uint32_t> hosted;
  for (uint32_t m = rank; m < layout.members; m += ranks) hosted.push_back(m);
  const uint64_t step = own_claims && n >= 12 ? le(msg + 4, 8) : 7;
  const std::vector<Record> recs = zeroth::decode_participant_records(msg, n, step, hosted, layout);
  const auto again = zeroth::encode_participant_records(step, 0, hosted, layout, recs);
  ZEROTH_FUZZ_REQUIRE(zeroth::decode_participant_records(again.data(), again.size(), step, hosted, layout) == recs,
                      "participant records do not survive encode(decode(message))");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t* msg = data + 4;
  const size_t n = size - 4;
  const bool own_claims = !(data[0] & 4);
  try {
    if (data[0] & 1) participant(msg, n, own_claims, data);
    else member(msg, n, own_claims, data[2]);
  } catch (const zeroth::Error& e) {
    zeroth::fuzz::rejected(e);
  }
  return 0;
}
