// Fuzz target: the coordinator <-> worker wire protocol (comm/tcp/frame.h),
// every byte of which comes from a peer on the network.
//
// Byte 0 picks what the rest is:
//   0      a whole frame: decode_frame_header, then (when the body is exactly the
//          declared length, as a connection delivers it) the decoder its type names
//   1..8   one body: join, welcome, catch-up, ready, step, result, commit, text
// Contract: decode, or throw tcp::FrameError. Beyond it: the encoding is
// canonical, so whatever decodes encodes back to exactly the bytes it came from.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "comm/tcp/auth.h"
#include "comm/tcp/frame.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace zeroth::tcp;
using Bytes = std::span<const uint8_t>;

template <typename Msg>
void round_trip(Bytes body, Msg (*decode)(Bytes)) {
  const Msg m = decode(body);
  const std::vector<uint8_t> again = encode(m);
  ZEROTH_FUZZ_REQUIRE(std::equal(again.begin(), again.end(), body.begin(), body.end()),
                      "a decoded message does not encode back to its bytes");
}

void decode_body(FrameType type, Bytes body) {
  switch (type) {
    case FrameType::Join: round_trip(body, decode_join); break;
    case FrameType::Welcome: round_trip(body, decode_welcome); break;
    case FrameType::CatchUp: round_trip(body, decode_catch_up); break;
    case FrameType::Ready: round_trip(body, decode_ready); break;
    case FrameType::Step: round_trip(body, decode_step); break;
    case FrameType::Result: round_trip(body, decode_result); break;
    case FrameType::Commit: round_trip(body, decode_commit); break;
    case FrameType::Leave:
    case FrameType::Evicted:
    case FrameType::Refused:
    case FrameType::Status: round_trip(body, decode_text); break;
    case FrameType::Challenge: round_trip(body, decode_challenge); break;
    case FrameType::Hello: round_trip(body, decode_hello); break;
    case FrameType::HelloOk: round_trip(body, decode_hello_ok); break;
    case FrameType::Heartbeat:
    case FrameType::StatusRequest: break;  // no body (their cap is 0)
  }
}

void decode_frame(Bytes bytes) {
  const FrameHeader h = decode_frame_header(bytes);
  ZEROTH_FUZZ_REQUIRE(h.length <= max_body_bytes(h.type), "a decoded header declares more than its type's cap");
  // The header re-encodes to the same 40 bytes (length and flags aside: an
  // untagged encoding writes 0 there; the flags must be what was decoded).
  const std::vector<uint8_t> again = encode_frame(h, {});
  ZEROTH_FUZZ_REQUIRE(std::equal(again.begin(), again.begin() + 8, bytes.begin()) &&
                          std::equal(again.begin() + 16, again.begin() + kFrameHeaderBytes, bytes.begin() + 16),
                      "a decoded frame header does not encode back to its bytes");
  ZEROTH_FUZZ_REQUIRE((h.flags & ~kFlagTagged) == 0, "a decoded header kept unknown flags");
  const Bytes body = bytes.subspan(kFrameHeaderBytes);
  if (body.size() == h.length) decode_body(h.type, body);
  // A tagged frame: its tag never verifies under a key the input cannot know.
  if ((h.flags & kFlagTagged) && body.size() == h.length + kTagBytes) {
    const Key key{};
    bool accepted = true;
    try {
      verify_tag(bytes.first(kFrameHeaderBytes), body.first(h.length), body.subspan(h.length), key, h.type, h.sequence);
    } catch (const FrameError&) {
      accepted = false;
    }
    (void)accepted;  // an all-zero key is guessable; acceptance is not a finding, crashing would be
  }
}

constexpr FrameType kBodies[] = {FrameType::Join,   FrameType::Welcome, FrameType::CatchUp,   FrameType::Ready,
                                 FrameType::Step,   FrameType::Result,  FrameType::Commit,    FrameType::Status,
                                 FrameType::Challenge, FrameType::Hello, FrameType::HelloOk};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Bytes rest(data + 1, size - 1);
  try {
    const unsigned pick = data[0] % 12;
    if (pick == 0) decode_frame(rest);
    else decode_body(kBodies[pick - 1], rest);
  } catch (const FrameError& e) {
    zeroth::fuzz::rejected(e);
  }
  return 0;
}
