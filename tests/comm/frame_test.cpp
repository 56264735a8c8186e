// The TCP wire protocol (comm/tcp/frame.h): every message round-trips field
// for field; headers are checked (magic, version, type, flags, the per-type
// cap) before any body is read; malformed bodies — truncated, padded, counts
// that cannot fit, bad enums, non-hex hashes — are FrameErrors, and random
// bytes fed to every decoder never crash nor allocate past the body.
#include <cstdint>
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "comm/tcp/frame.h"
#include "comm/transport.h"

namespace zeroth::tcp {
namespace {

StepEntry entry_at(uint64_t step) {
  StepEntry e;
  e.step = step;
  e.scale = 0.25f;
  e.lr = 1e-3f;
  for (uint32_t m = 0; m < 3; ++m) {
    Record r;
    r.member = m * 5;
    r.slot = 0;
    r.code = uint8_t(17 * m + step);
    e.records.push_back(r);
  }
  return e;
}

const std::string kHash = "00112233445566778899aabbccddeeff";

TEST(Frame, HeaderRoundTripAndChecks) {
  FrameHeader h{FrameType::Result, 3, 0, 7, 42, 99};
  const std::vector<uint8_t> body = {1, 2, 3};
  auto f = encode_frame(h, body);
  ASSERT_EQ(f.size(), kFrameHeaderBytes + 3);
  const auto back = decode_frame_header(f);
  EXPECT_EQ(back.type, FrameType::Result);
  EXPECT_EQ(back.length, 3u);
  EXPECT_EQ(back.epoch, 7u);
  EXPECT_EQ(back.step, 42u);
  EXPECT_EQ(back.sequence, 99u);
  auto expect_kind = [&](std::vector<uint8_t> bytes, FrameError::Kind kind) {
    try {
      decode_frame_header(bytes);
      ADD_FAILURE() << "accepted";
    } catch (const FrameError& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
    }
  };
  auto g = f;
  g[0] ^= 1;  // magic
  expect_kind(g, FrameError::Kind::Malformed);
  g = f;
  g[4] = 2;  // version
  expect_kind(g, FrameError::Kind::Malformed);
  g = f;
  g[6] = 200;  // type
  expect_kind(g, FrameError::Kind::UnknownType);
  g = f;
  g[12] = 2;  // an unknown flag
  expect_kind(g, FrameError::Kind::Malformed);
  g = f;
  g[8] = g[9] = g[10] = g[11] = 0xff;  // declares 4 GiB: refused from the header alone
  expect_kind(g, FrameError::Kind::Oversize);
  expect_kind(std::vector<uint8_t>(f.begin(), f.begin() + 39), FrameError::Kind::Malformed);
  // Heartbeats carry no body; one with a body is oversize.
  EXPECT_THROW(encode_frame({FrameType::Heartbeat, 0, 0, 0, 0, 1}, body), FrameError);
}

TEST(Frame, EveryMessageRoundTrips) {
  JoinMsg j{"volunteer-7", kHash, 12, kHash, true, "cpu-x86-64-v3"};
  const auto j2 = decode_join(encode(j));
  EXPECT_EQ(j2.name, j.name);
  EXPECT_EQ(j2.base_hash, kHash);
  EXPECT_EQ(j2.steps, 12u);
  EXPECT_TRUE(j2.private_data);
  EXPECT_EQ(j2.backend, "cpu-x86-64-v3");

  WelcomeMsg w{9, "run:\n  seed: 1\n", kHash, 100, 40, true};
  const auto w2 = decode_welcome(encode(w));
  EXPECT_EQ(w2.member, 9u);
  EXPECT_EQ(w2.config_yaml, w.config_yaml);
  EXPECT_EQ(w2.ledger_steps, 100u);
  EXPECT_EQ(w2.from_step, 40u);
  EXPECT_TRUE(w2.reset);

  CatchUpMsg snap;
  snap.part = CatchUpPart::Snapshot;
  snap.snapshot_step = 40;
  snap.offset = 10;
  snap.total = 20;
  snap.bytes = {5, 6, 7};
  const auto s2 = decode_catch_up(encode(snap));
  EXPECT_EQ(s2.part, CatchUpPart::Snapshot);
  EXPECT_EQ(s2.bytes, snap.bytes);
  EXPECT_EQ(s2.offset, 10u);
  CatchUpMsg ent;
  ent.part = CatchUpPart::Entries;
  ent.entries = {entry_at(5), entry_at(6), entry_at(7)};
  EXPECT_EQ(decode_catch_up(encode(ent)).entries, ent.entries);
  CatchUpMsg end;
  end.part = CatchUpPart::End;
  end.snapshot_step = 8;
  end.hash = kHash;
  EXPECT_EQ(decode_catch_up(encode(end)).hash, kHash);

  EXPECT_EQ(decode_ready(encode(ReadyMsg{8, kHash})).steps, 8u);
  StepMsg st{17, 0.5f, 1e-3f, {0, 3, 9}, 16, {}};
  const auto st2 = decode_step(encode(st));
  EXPECT_EQ(st2.members, st.members);
  EXPECT_EQ(st2.lanes, 16u);
  EXPECT_EQ(st2.scale, 0.5f);
  std::vector<Record> recs(1);
  recs[0].member = 3;
  recs[0].code = 200;
  ResultMsg res{3, encode_member_records(17, 2, 3, 1, false, recs), 0.75, 128, "", {{5, {1, 2, 3}}}};
  const auto r2 = decode_result(encode(res));
  EXPECT_EQ(r2.records, res.records);
  EXPECT_EQ(r2.loss, 0.75);
  EXPECT_EQ(r2.tokens, 128);
  EXPECT_EQ(r2.checks, res.checks);
  StepMsg chk{18, 0.5f, 1e-3f, {0, 3}, 4, {{3, 0, 0}, {0, 3, 1}}};
  const auto chk2 = decode_step(encode(chk));
  ASSERT_EQ(chk2.checks.size(), 2u);
  EXPECT_EQ(chk2.checks[1].target, 3u);
  EXPECT_EQ(chk2.checks[1].lane, 1u);
  EXPECT_THROW(decode_step(encode(StepMsg{18, 0.5f, 1e-3f, {0, 3}, 4, {{3, 3, 0}}})), FrameError);  // checks itself
  EXPECT_EQ(decode_commit(encode(CommitMsg{entry_at(3)})).entry, entry_at(3));
  EXPECT_EQ(decode_text(encode(TextMsg{"bye"})).text, "bye");
}

TEST(Frame, MalformedBodiesAreErrors) {
  const auto join = encode(JoinMsg{"w", kHash, 0, "", false, "cpu-x86-64-v4"});
  // Truncated anywhere, or padded: an error.
  for (size_t n = 0; n < join.size(); ++n)
    EXPECT_THROW(decode_join(std::span(join).first(n)), FrameError) << "truncated at " << n;
  auto padded = join;
  padded.push_back(0);
  EXPECT_THROW(decode_join(padded), FrameError);
  // A name with a control character, a hash that is not hex, a bool that is 2.
  EXPECT_THROW(decode_join(encode(JoinMsg{"a\nb", kHash, 0, "", false, "cpu"})), FrameError);
  EXPECT_THROW(decode_join(encode(JoinMsg{"w", "XYZ", 0, "", false, "cpu"})), FrameError);
  auto bad_bool = join;
  bad_bool[join.size() - 4 - std::string("cpu-x86-64-v4").size() - 1] = 2;  // private_data, before the backend
  EXPECT_THROW(decode_join(bad_bool), FrameError);
  // The backend class: [a-z0-9-], 1..32 bytes.
  EXPECT_THROW(decode_join(encode(JoinMsg{"w", kHash, 0, "", false, ""})), FrameError);
  EXPECT_THROW(decode_join(encode(JoinMsg{"w", kHash, 0, "", false, "CPU x"})), FrameError);
  EXPECT_THROW(decode_join(encode(JoinMsg{"w", kHash, 0, "", false, std::string(33, 'c')})), FrameError);
  // A member count that cannot fit in the body is refused before reserving.
  auto step = encode(StepMsg{1, 1.0f, 0.1f, {1, 2}, 4, {}});
  step[20] = step[21] = step[22] = 0xff;  // count
  EXPECT_THROW(decode_step(step), FrameError);
  // Members not ascending; more members than lanes; a non-finite scale.
  EXPECT_THROW(decode_step(encode(StepMsg{1, 1.0f, 0.1f, {2, 1}, 4, {}})), FrameError);
  EXPECT_THROW(decode_step(encode(StepMsg{1, 1.0f, 0.1f, {1, 2, 3}, 2, {}})), FrameError);
  EXPECT_THROW(decode_step(encode(StepMsg{1, NAN, 0.1f, {1}, 2, {}})), FrameError);
  // Entries out of order; a snapshot chunk outside its file.
  CatchUpMsg ent;
  ent.part = CatchUpPart::Entries;
  ent.entries = {entry_at(5), entry_at(7)};
  EXPECT_THROW(decode_catch_up(encode(ent)), FrameError);
  CatchUpMsg snap;
  snap.part = CatchUpPart::Snapshot;
  snap.offset = 19;
  snap.total = 20;
  snap.bytes = {1, 2};
  EXPECT_THROW(decode_catch_up(encode(snap)), FrameError);
}

// Random bodies, and random mutations of valid ones, through every decoder:
// each either decodes or throws FrameError; nothing else happens.
TEST(Frame, RandomBytesNeverCrashAnyDecoder) {
  std::mt19937_64 rng(7);
  const std::vector<std::pair<const char*, std::function<void(std::span<const uint8_t>)>>> decoders = {
      {"join", [](auto b) { decode_join(b); }},       {"welcome", [](auto b) { decode_welcome(b); }},
      {"catch-up", [](auto b) { decode_catch_up(b); }}, {"ready", [](auto b) { decode_ready(b); }},
      {"step", [](auto b) { decode_step(b); }},       {"result", [](auto b) { decode_result(b); }},
      {"commit", [](auto b) { decode_commit(b); }},   {"text", [](auto b) { decode_text(b); }},
  };
  CatchUpMsg ent;
  ent.part = CatchUpPart::Entries;
  ent.entries = {entry_at(1), entry_at(2)};
  const std::vector<std::vector<uint8_t>> seeds = {
      encode(JoinMsg{"w", kHash, 3, kHash, false, "cuda-sm90"}), encode(WelcomeMsg{1, "x: 1", kHash, 5, 2, false}),
      encode(ent), encode(ReadyMsg{1, kHash}), encode(StepMsg{1, 1.0f, 0.1f, {1, 2}, 4, {}}),
      encode(CommitMsg{entry_at(9)}), encode(TextMsg{"hello"})};
  int decoded = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> b;
    if (i % 2 == 0) {
      b.resize(rng() % 96);
      for (auto& x : b) x = uint8_t(rng());
    } else {
      b = seeds[rng() % seeds.size()];
      for (int k = 0, n = 1 + int(rng() % 3); k < n && !b.empty(); ++k) b[rng() % b.size()] ^= uint8_t(1u << (rng() % 8));
    }
    for (const auto& [name, decode] : decoders) {
      try {
        decode(b);
        ++decoded;
      } catch (const FrameError&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(decoded, 0);  // some mutations land in free fields (a hash digit, a count) and stay valid
}

}  // namespace
}  // namespace zeroth::tcp
