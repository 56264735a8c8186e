// The wire form of one member's records (comm/transport.h): a 28-byte header
// then one byte per slot (0x80 = dropped), or 4 bytes per slot in exact runs.
// Round trips keep codes and values bit for bit and slot order; every
// malformed message is a zeroth::Error, never a crash or a silent misread.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "comm/transport.h"
#include "core/error.h"

namespace zeroth {
namespace {

Record code_record(uint32_t member, uint32_t slot, uint8_t code) {
  Record r;
  r.member = member;
  r.slot = slot;
  r.code = code;
  return r;
}

Record exact_record(uint32_t member, uint32_t slot, float value) {
  Record r;
  r.member = member;
  r.slot = slot;
  r.value = value;
  r.exact = true;
  return r;
}

template <typename T>
T read_le(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(b[at + i]) << (8 * i);
  return T(v);
}

std::string error_of(const std::vector<uint8_t>& msg, uint64_t step, uint32_t member) {
  try {
    decode_member_records(msg.data(), msg.size(), step, member);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(MemberRecords, HeaderLayoutAndOneBytePerSlot) {
  // Records handed over out of slot order; slot 1 and 4 dropped.
  const std::vector<Record> mine = {code_record(3, 2, 0x7f), code_record(3, 0, 0x00), code_record(3, 3, 0x81),
                                    code_record(3, 5, 0xff)};
  const uint64_t step = 0x0102030405060708ull;
  const auto msg = encode_member_records(step, 9, 3, 6, false, mine);
  ASSERT_EQ(msg.size(), kMemberRecordsHeader + 6);
  EXPECT_EQ(std::string(msg.begin(), msg.begin() + 4), "ZRC1");
  EXPECT_EQ(read_le<uint64_t>(msg, 4), step);
  EXPECT_EQ(read_le<uint32_t>(msg, 12), 9u);
  EXPECT_EQ(read_le<uint32_t>(msg, 16), 3u);
  EXPECT_EQ(read_le<uint32_t>(msg, 20), 6u);
  EXPECT_EQ(msg[24], 0);  // flags
  EXPECT_EQ(msg[25], 0);
  EXPECT_EQ(read_le<uint16_t>(msg, 26), 0);
  const std::vector<uint8_t> body(msg.begin() + 28, msg.end());
  EXPECT_EQ(body, (std::vector<uint8_t>{0x00, 0x80, 0x7f, 0x81, 0x80, 0xff}));

  const auto back = decode_member_records(msg.data(), msg.size(), step, 3);
  // Slot order, dropped slots absent, codes exact (0x81 = −127 and 0xff = −1 included).
  const std::vector<Record> want = {code_record(3, 0, 0x00), code_record(3, 2, 0x7f), code_record(3, 3, 0x81),
                                    code_record(3, 5, 0xff)};
  EXPECT_EQ(back, want);
}

TEST(MemberRecords, EveryCodeRoundTrips) {
  std::vector<Record> mine;
  for (uint32_t s = 0; s < 256; ++s)
    if (s != 0x80) mine.push_back(code_record(1, s, uint8_t(s)));
  const auto msg = encode_member_records(7, 0, 1, 256, false, mine);
  EXPECT_EQ(msg.size(), kMemberRecordsHeader + 256);
  EXPECT_EQ(decode_member_records(msg.data(), msg.size(), 7, 1), mine);
}

TEST(MemberRecords, EmptyAndAllDropped) {
  const auto none = encode_member_records(1, 0, 0, 0, false, {});
  EXPECT_EQ(none.size(), kMemberRecordsHeader);
  EXPECT_TRUE(decode_member_records(none.data(), none.size(), 1, 0).empty());
  const auto dropped = encode_member_records(1, 0, 0, 4, false, {});
  EXPECT_EQ(std::vector<uint8_t>(dropped.begin() + 28, dropped.end()), std::vector<uint8_t>(4, 0x80));
  EXPECT_TRUE(decode_member_records(dropped.data(), dropped.size(), 1, 0).empty());
}

TEST(MemberRecords, ExactValuesRoundTripBitForBit) {
  const float denormal = std::numeric_limits<float>::denorm_min();
  const std::vector<Record> mine = {exact_record(2, 0, -0.0f), exact_record(2, 1, 3.25e-7f),
                                    exact_record(2, 3, -1.5e30f), exact_record(2, 4, denormal)};
  const auto msg = encode_member_records(11, 1, 2, 5, true, mine);
  ASSERT_EQ(msg.size(), kMemberRecordsHeader + 5 * 4);
  EXPECT_EQ(msg[24], 1);  // the exact flag
  const auto back = decode_member_records(msg.data(), msg.size(), 11, 2);
  ASSERT_EQ(back.size(), 4u);  // slot 2 was dropped (sent as NaN)
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].slot, mine[i].slot);
    EXPECT_EQ(back[i].member, 2u);
    EXPECT_TRUE(back[i].exact);
    uint32_t a, b;
    std::memcpy(&a, &back[i].value, 4);
    std::memcpy(&b, &mine[i].value, 4);
    EXPECT_EQ(a, b) << "slot " << mine[i].slot;  // -0.0 and the denormal keep their bits
  }
  // A non-finite value handed in is a dropped slot on the other side.
  const auto inf = encode_member_records(11, 1, 2, 2, true, {exact_record(2, 1, INFINITY)});
  EXPECT_TRUE(decode_member_records(inf.data(), inf.size(), 11, 2).empty());
}

TEST(MemberRecords, GradientKindTravelsAsFlagBitOne) {
  // A gradient member's records: same one byte per slot, flag bit 1 set, and
  // the kind restored on the other side; exact runs keep both bits.
  std::vector<Record> mine = {code_record(4, 0, 0x05), code_record(4, 2, 0xfe)};
  for (auto& r : mine) r.kind = RecordKind::Gradient;
  const auto msg = encode_member_records(3, 0, 4, 3, false, mine);
  ASSERT_EQ(msg.size(), kMemberRecordsHeader + 3);
  EXPECT_EQ(msg[24], 2);
  EXPECT_EQ(decode_member_records(msg.data(), msg.size(), 3, 4), mine);
  std::vector<Record> exact = {exact_record(4, 1, 0.5f)};
  exact[0].kind = RecordKind::Gradient;
  const auto emsg = encode_member_records(3, 0, 4, 2, true, exact);
  EXPECT_EQ(emsg[24], 3);
  EXPECT_EQ(decode_member_records(emsg.data(), emsg.size(), 3, 4), exact);
  // The same codes as zeroth-order records decode as zeroth-order: only the flag differs.
  auto zo = mine;
  for (auto& r : zo) r.kind = RecordKind::ZerothOrder;
  const auto zmsg = encode_member_records(3, 0, 4, 3, false, zo);
  EXPECT_EQ(std::vector<uint8_t>(zmsg.begin() + 28, zmsg.end()), std::vector<uint8_t>(msg.begin() + 28, msg.end()));
  EXPECT_EQ(zmsg[24], 0);
  // One kind per member and step.
  mine[1].kind = RecordKind::ZerothOrder;
  EXPECT_THROW(encode_member_records(3, 0, 4, 3, false, mine), Error);
}

TEST(MemberRecords, EncodeRejectsForeignRecords) {
  EXPECT_THROW(encode_member_records(0, 0, 1, 2, false, {code_record(0, 0, 1)}), Error);  // another member's
  EXPECT_THROW(encode_member_records(0, 0, 1, 2, false, {code_record(1, 2, 1)}), Error);  // slot past the count
}

TEST(MemberRecords, MalformedMessagesAreErrors) {
  const auto good = encode_member_records(5, 0, 2, 3, false, {code_record(2, 0, 4), code_record(2, 2, 9)});
  ASSERT_EQ(decode_member_records(good.data(), good.size(), 5, 2).size(), 2u);

  auto expect_error = [](const std::vector<uint8_t>& msg, uint64_t step, uint32_t member, const std::string& what) {
    const std::string e = error_of(msg, step, member);
    EXPECT_NE(e.find(what), std::string::npos) << "got \"" << e << "\", wanted it to mention \"" << what << "\"";
  };
  // Shorter than the header, including empty.
  expect_error({}, 5, 2, "shorter than its 28-byte header");
  expect_error(std::vector<uint8_t>(good.begin(), good.begin() + 27), 5, 2, "shorter");
  // Bad magic.
  auto bad = good;
  bad[0] = 'X';
  expect_error(bad, 5, 2, "magic");
  // Wrong step or member.
  expect_error(good, 6, 2, "step 5, expected step 6");
  expect_error(good, 5, 1, "claims member 2, expected member 1");
  // Length mismatch: a byte short, a byte extra, or an exact flag on one-byte slots.
  expect_error(std::vector<uint8_t>(good.begin(), good.end() - 1), 5, 2, "does not hold its 3 slots");
  auto longer = good;
  longer.push_back(0);
  expect_error(longer, 5, 2, "does not hold its 3 slots");
  auto exact_flag = good;
  exact_flag[24] = 1;
  expect_error(exact_flag, 5, 2, "does not hold its 3 slots");
  // A huge slot count is checked against the length, never trusted.
  auto huge = good;
  huge[20] = huge[21] = huge[22] = huge[23] = 0xff;
  expect_error(huge, 5, 2, "does not hold");
  // Unknown flags.
  for (uint8_t f : {uint8_t(8), uint8_t(0x80), uint8_t(9)}) {
    auto flags = good;
    flags[24] = f;
    expect_error(flags, 5, 2, "unknown flags");
  }
  // The curvature flag promises a second block; with gradient projections it is refused.
  auto curv = good;
  curv[24] = 4;
  expect_error(curv, 5, 2, "does not hold its 3 slots");
  curv[24] = 6;
  expect_error(curv, 5, 2, "beside gradient projections");
}

// HiZOO's records: each slot's gradient code, then a second block with each
// slot's curvature code; either may be dropped on its own.
TEST(MemberRecords, CurvatureBlockFollowsTheGradientCodes) {
  auto curv = [](uint32_t slot, uint8_t code) {
    Record r = code_record(2, slot, code);
    r.kind = RecordKind::Curvature;
    return r;
  };
  const std::vector<Record> mine = {code_record(2, 0, 0x11), curv(0, 0xf0), curv(1, 0x05), code_record(2, 2, 0x7f)};
  const auto msg = encode_member_records(9, 0, 2, 3, false, mine, true);
  ASSERT_EQ(msg.size(), member_records_bytes(3, false, true));
  ASSERT_EQ(msg.size(), kMemberRecordsHeader + 6);
  EXPECT_EQ(msg[24], 4);
  EXPECT_EQ(std::vector<uint8_t>(msg.begin() + 28, msg.end()),
            (std::vector<uint8_t>{0x11, 0x80, 0x7f, 0xf0, 0x05, 0x80}));
  EXPECT_EQ(decode_member_records(msg.data(), msg.size(), 9, 2), mine);  // (member, slot, kind) order
  // Exact runs: two blocks of 4-byte values.
  std::vector<Record> exact = {exact_record(2, 1, 0.25f), exact_record(2, 1, 3.0f)};
  exact[1].kind = RecordKind::Curvature;
  const auto emsg = encode_member_records(9, 0, 2, 2, true, exact, true);
  ASSERT_EQ(emsg.size(), kMemberRecordsHeader + 16);
  EXPECT_EQ(decode_member_records(emsg.data(), emsg.size(), 9, 2), exact);
  // A message without the block keeps its size whatever the records; curvature
  // records need the block, and never go with gradient projections.
  EXPECT_EQ(encode_member_records(9, 0, 2, 3, false, {}, true).size(), kMemberRecordsHeader + 6);
  EXPECT_THROW(encode_member_records(9, 0, 2, 3, false, mine), Error);
  std::vector<Record> grad = {code_record(2, 0, 1)};
  grad[0].kind = RecordKind::Gradient;
  EXPECT_THROW(encode_member_records(9, 0, 2, 3, false, grad, true), Error);
  // A participant's layout says whether the block is there.
  RecordLayout layout{2, 3, false};
  layout.curvature = true;
  Record other = curv(2, 0x22);
  other.member = 1;
  const std::vector<Record> recs = {code_record(0, 1, 3), other};
  const auto part = encode_participant_records(9, 0, {0, 1}, layout, recs);
  ASSERT_EQ(part.size(), 2 * layout.message_bytes(0));
  EXPECT_EQ(decode_participant_records(part.data(), part.size(), 9, {0, 1}, layout), recs);
  layout.curvature = false;
  const auto plain = encode_participant_records(9, 0, {0, 1}, layout, {code_record(1, 1, 3)});
  layout.curvature = true;
  EXPECT_THROW(decode_participant_records(plain.data(), plain.size(), 9, {0, 1}, layout), Error);
}

// A participant's message: its hosted members' messages back to back, each
// decodable on its own; the decoder checks it holds exactly those members.
TEST(ParticipantRecords, HostedMembersBackToBack) {
  const RecordLayout layout{6, 3, false};
  const std::vector<uint32_t> hosted = {1, 4};
  std::vector<Record> recs = {code_record(4, 2, 9), code_record(1, 0, 200), code_record(1, 2, 7)};
  const auto msg = encode_participant_records(11, 0, hosted, layout, recs);
  const size_t each = kMemberRecordsHeader + 3;
  ASSERT_EQ(msg.size(), 2 * each);
  EXPECT_EQ(read_le<uint32_t>(msg, 16), 1u);
  EXPECT_EQ(read_le<uint32_t>(msg, each + 16), 4u);
  const auto back = decode_participant_records(msg.data(), msg.size(), 11, hosted, layout);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].member, 1u);
  EXPECT_EQ(back[0].code, 200);
  EXPECT_EQ(back[1].slot, 2u);
  EXPECT_EQ(back[2].member, 4u);
  EXPECT_EQ(back[2].code, 9);
  // The wrong members, a truncated message, a different slot count or width.
  EXPECT_THROW(decode_participant_records(msg.data(), msg.size(), 11, {1, 5}, layout), Error);
  EXPECT_THROW(decode_participant_records(msg.data(), msg.size() - 1, 11, hosted, layout), Error);
  EXPECT_THROW(decode_participant_records(msg.data(), msg.size(), 11, {1}, layout), Error);
  EXPECT_THROW(decode_participant_records(msg.data(), msg.size(), 11, hosted, RecordLayout{6, 2, false}), Error);
  EXPECT_THROW(decode_participant_records(msg.data(), msg.size(), 12, hosted, layout), Error);
  // A record of a member the participant does not host is refused at encode.
  recs.push_back(code_record(2, 0, 1));
  EXPECT_THROW(encode_participant_records(11, 0, hosted, layout, recs), Error);
}

// Roles with different slot counts (a gradient member's roles.grad_slots):
// each member's message has its own length; a member sending the other
// count is refused.
TEST(ParticipantRecords, MembersMayHaveTheirOwnSlotCounts) {
  const RecordLayout layout(4, 2, false, {2, 5, 2, 2});
  EXPECT_EQ(layout.slots_of(1), 5u);
  EXPECT_EQ(layout.slots_of(3), 2u);
  EXPECT_EQ(layout.message_bytes(1), kMemberRecordsHeader + 5);
  const std::vector<uint32_t> hosted = {1, 3};
  const std::vector<Record> recs = {code_record(1, 4, 17), code_record(3, 1, 250), code_record(1, 0, 3)};
  const auto msg = encode_participant_records(7, 0, hosted, layout, recs);
  ASSERT_EQ(msg.size(), 2 * kMemberRecordsHeader + 5 + 2);
  const auto back = decode_participant_records(msg.data(), msg.size(), 7, hosted, layout);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].member, 1u);
  EXPECT_EQ(back[0].slot, 0u);
  EXPECT_EQ(back[1].slot, 4u);
  EXPECT_EQ(back[1].code, 17);
  EXPECT_EQ(back[2].member, 3u);
  EXPECT_EQ(back[2].code, 250);
  // The uniform layout's reader refuses member 1's 5 slots.
  EXPECT_THROW(decode_participant_records(msg.data(), msg.size(), 7, hosted, RecordLayout{4, 2, false}), Error);
  // A slot beyond a member's own count is refused at encode.
  EXPECT_THROW(encode_participant_records(7, 0, hosted, layout, {code_record(3, 4, 1)}), Error);
}

}  // namespace
}  // namespace zeroth
