// The coordinator ↔ worker wire protocol: length-prefixed binary frames.
//
//   header (40 bytes, little-endian):
//     u32 magic "ZTP1" | u16 version | u16 type | u32 body length | u32 flags
//     (bit 0: a 32-byte HMAC tag follows the body: see comm/tcp/auth.h)
//     u64 epoch | u64 step | u64 sequence
//   body: the message of `type`, encoded field by field (see the structs below)
//
// A receiver reads the header, checks magic, version, type and the body length
// against that type's cap BEFORE allocating anything, then reads exactly that
// many bytes. Bodies are decoded by hand, one explicit field at a time, with
// every count bounded by the bytes that remain: there is no generic object
// deserialization anywhere. Every malformed input is a FrameError naming what
// is wrong, never a crash or an over-allocation.
//
// `sequence` counts frames per connection and direction (1, 2, ...); a frame
// out of sequence is rejected. `epoch` is the membership epoch the sender
// believes in; `step` the step the frame is about (0 where none).
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "optim/ledger.h"
#include "optim/member_role.h"

namespace zeroth::tcp {

constexpr uint32_t kFrameMagic = 0x3150545a;  // "ZTP1"
constexpr uint16_t kProtocolVersion = 1;
constexpr size_t kFrameHeaderBytes = 40;

enum class FrameType : uint16_t {
  Join = 1,       // worker → coordinator: who I am, what I hold
  Welcome = 2,    // coordinator → worker: member id, the run's config, where the ledger is
  CatchUp = 3,    // coordinator → worker: a snapshot chunk or ledger entries (streamed)
  Ready = 4,      // worker → coordinator: caught up to step s with hash h
  Step = 5,       // coordinator → members: compute step t (epoch, scale, lr, assignment)
  Result = 6,     // member → coordinator: its records for step t
  Commit = 7,     // coordinator → members: the committed entry of step t
  Heartbeat = 8,  // both ways
  Leave = 9,      // worker → coordinator: I am going
  Evicted = 10,   // coordinator → worker: you are out of the run (why); join again to come back
  StatusRequest = 11,  // anyone → coordinator
  Status = 12,         // coordinator → asker: JSON
  Refused = 13,        // coordinator → worker: join refused (why); the connection closes
  Challenge = 14,      // coordinator → worker, first frame of an authenticated run: a nonce
  Hello = 15,          // worker → coordinator: its credential's proof for that nonce
  HelloOk = 16,        // coordinator → worker: its own proof; from here on every frame is tagged
};
constexpr uint32_t kFlagTagged = 1;
constexpr size_t kTagBytes = 32;
const char* frame_type_name(FrameType t);

struct FrameHeader {
  FrameType type = FrameType::Heartbeat;
  uint32_t length = 0;
  uint32_t flags = 0;
  uint64_t epoch = 0, step = 0, sequence = 0;
};

class FrameError : public std::runtime_error {
 public:
  // Tls: a TLS handshake that failed, or TLS on one end only (comm/tcp/tls.h).
  enum class Kind { Malformed, Oversize, UnknownType, BadTag, Tls };
  FrameError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// The largest body a frame of `type` may carry.
uint32_t max_body_bytes(FrameType type);

// The frame's bytes; with `tag_key` the frame is tagged: flag set, and
// HMAC-SHA256(tag_key, header | body) appended.
std::vector<uint8_t> encode_frame(const FrameHeader& header, std::span<const uint8_t> body,
                                  const std::array<uint8_t, 32>* tag_key = nullptr);
// Checks magic, version, flags, type and the length cap. Throws FrameError.
FrameHeader decode_frame_header(std::span<const uint8_t> bytes);
// Checks a tagged frame's tag: HMAC-SHA256(key, header | body) must equal the
// 32 bytes after the body (compared in constant time). Throws FrameError
// (BadTag) otherwise.
void verify_tag(std::span<const uint8_t> header, std::span<const uint8_t> body, std::span<const uint8_t> tag,
                const std::array<uint8_t, 32>& key, FrameType type, uint64_t sequence);

// ---- message bodies --------------------------------------------------------

struct JoinMsg {
  std::string name;          // the volunteer's chosen name (≤ 64 bytes, printable)
  std::string base_hash;     // hash of the worker's base model file
  uint64_t steps = 0;        // entries the worker has applied (0: fresh)
  std::string theta_hash;    // its θ hash after them ("" when fresh)
  bool private_data = false; // it reads its own data file
  std::string backend;       // its backend class (core/backend.h), ≤ 32 bytes [a-z0-9-]
};
struct WelcomeMsg {
  uint32_t member = 0;       // member id in records and perturbation keys
  std::string config_yaml;   // the run's resolved config
  std::string base_hash;
  uint64_t ledger_steps = 0; // entries the coordinator holds
  uint64_t from_step = 0;    // catch-up starts here (the worker's steps, or a snapshot's step, or 0)
  bool reset = false;        // the worker must start again from θ_0 (its state is not in the ledger)
};
enum class CatchUpPart : uint8_t { Snapshot = 1, Entries = 2, End = 3 };
struct CatchUpMsg {
  CatchUpPart part = CatchUpPart::End;
  uint64_t snapshot_step = 0;          // Snapshot: the step it holds; End: steps the worker now has
  uint64_t offset = 0, total = 0;      // Snapshot: this chunk's byte offset and the file's size
  std::vector<uint8_t> bytes;          // Snapshot: safetensors bytes
  std::vector<StepEntry> entries;      // Entries: consecutive entries
  std::string hash;                    // End: the coordinator's θ hash at snapshot_step
};
struct ReadyMsg {
  uint64_t steps = 0;
  std::string theta_hash;
  // Its role (optim/member_role.h); gradient and JVP members send
  // roles.grad_slots slots.
  MemberRole role = MemberRole::Zo;
};
// Spot check: `checker` also computes `target`'s records (its key, its lane)
// and sends them beside its own; the coordinator compares the two.
struct SpotCheck {
  uint32_t checker = 0, target = 0, lane = 0;
};
struct StepMsg {
  uint64_t step = 0;
  float scale = 0, lr = 0;
  std::vector<uint32_t> members;  // this step's members, ascending; a member's position is its draw lane
  uint32_t lanes = 0;             // draw lanes per step (max_workers): draw = step·lanes + position
  std::vector<SpotCheck> checks;
};
struct ResultMsg {
  uint32_t member = 0;
  std::vector<uint8_t> records;   // encode_member_records (comm/transport.h)
  double loss = 0;
  int64_t tokens = 0;
  std::string theta_hash;         // θ_t's hash, every hash_every steps ("" otherwise)
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> checks;  // spot checks: target, its records as computed here
};
struct CommitMsg {
  StepEntry entry;
};
struct TextMsg {  // Leave, Evicted, Refused, Status (JSON)
  std::string text;
};
struct ChallengeMsg {
  std::array<uint8_t, 32> nonce{};
};
struct HelloMsg {
  uint8_t kind = 0;  // CredentialKind
  std::string name;
  uint64_t expiry = 0;
  std::array<uint8_t, 32> nonce{}, proof{};
};
struct HelloOkMsg {
  std::array<uint8_t, 32> proof{};
};

std::vector<uint8_t> encode(const JoinMsg&);
std::vector<uint8_t> encode(const WelcomeMsg&);
std::vector<uint8_t> encode(const CatchUpMsg&);
std::vector<uint8_t> encode(const ReadyMsg&);
std::vector<uint8_t> encode(const StepMsg&);
std::vector<uint8_t> encode(const ResultMsg&);
std::vector<uint8_t> encode(const CommitMsg&);
std::vector<uint8_t> encode(const TextMsg&);
std::vector<uint8_t> encode(const ChallengeMsg&);
std::vector<uint8_t> encode(const HelloMsg&);
std::vector<uint8_t> encode(const HelloOkMsg&);

JoinMsg decode_join(std::span<const uint8_t> body);
WelcomeMsg decode_welcome(std::span<const uint8_t> body);
CatchUpMsg decode_catch_up(std::span<const uint8_t> body);
ReadyMsg decode_ready(std::span<const uint8_t> body);
StepMsg decode_step(std::span<const uint8_t> body);
ResultMsg decode_result(std::span<const uint8_t> body);
CommitMsg decode_commit(std::span<const uint8_t> body);
TextMsg decode_text(std::span<const uint8_t> body);
ChallengeMsg decode_challenge(std::span<const uint8_t> body);
HelloMsg decode_hello(std::span<const uint8_t> body);
HelloOkMsg decode_hello_ok(std::span<const uint8_t> body);

}  // namespace zeroth::tcp
