#include "comm/tcp/frame.h"

#include "comm/tcp/auth.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>

namespace zeroth::tcp {
namespace {

using Kind = FrameError::Kind;

class Writer {
 public:
  Writer() { out.reserve(64); }  // also keeps GCC 12 from a false -Wstringop-overflow on an empty vector
  template <typename T>
  void num(T v) {
    static_assert(std::is_arithmetic_v<T>);
    if constexpr (std::is_floating_point_v<T>) {
      using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
      U u;
      std::memcpy(&u, &v, sizeof u);
      num(u);
    } else {
      for (size_t i = 0; i < sizeof(T); ++i) out.push_back(uint8_t(uint64_t(v) >> (8 * i)));
    }
  }
  void bytes(std::span<const uint8_t> b) {
    num(uint32_t(b.size()));
    const size_t at = out.size();
    out.resize(at + b.size());
    if (!b.empty()) std::memcpy(out.data() + at, b.data(), b.size());
  }
  void str(const std::string& s) { bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
  std::vector<uint8_t> out;
};

// Reads fields in order; every read is bounds-checked, every count bounded by
// what remains; finish() insists that nothing is left over.
class Reader {
 public:
  Reader(std::span<const uint8_t> b, const char* what) : b_(b), what_(what) {}
  template <typename T>
  T num(const char* field) {
    need(sizeof(T), field);
    if constexpr (std::is_floating_point_v<T>) {
      using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
      const U u = num<U>(field);
      T v;
      std::memcpy(&v, &u, sizeof v);
      return v;
    } else {
      uint64_t v = 0;
      for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(b_[at_ + i]) << (8 * i);
      at_ += sizeof(T);
      return T(v);
    }
  }
  std::span<const uint8_t> bytes(const char* field, size_t cap) {
    const uint32_t n = num<uint32_t>(field);
    if (n > cap) fail(fmt::format("{} of {} bytes exceeds its cap of {}", field, n, cap));
    need(n, field);
    const auto s = b_.subspan(at_, n);
    at_ += n;
    return s;
  }
  std::string str(const char* field, size_t cap) {
    const auto s = bytes(field, cap);
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }
  bool boolean(const char* field) {
    const uint8_t v = num<uint8_t>(field);
    if (v > 1) fail(fmt::format("{} is {}, not 0 or 1", field, v));
    return v == 1;
  }
  size_t remaining() const { return b_.size() - at_; }
  void finish() {
    if (at_ != b_.size()) fail(fmt::format("{} bytes left over", b_.size() - at_));
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw FrameError(Kind::Malformed, fmt::format("malformed {} message: {}", what_, why));
  }

 private:
  void need(size_t n, const char* field) {
    if (n > b_.size() - at_) fail(fmt::format("{} needs {} bytes, {} remain", field, n, b_.size() - at_));
  }
  std::span<const uint8_t> b_;
  const char* what_;
  size_t at_ = 0;
};

constexpr size_t kHashChars = 64;      // hex digests (32 today)
constexpr size_t kNameBytes = 64;
constexpr size_t kBackendBytes = 32;  // backend class names
constexpr uint32_t kMiB = 1u << 20;

void check_hash(Reader& r, const std::string& h, const char* field) {
  for (const char c : h)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) r.fail(fmt::format("{} is not lower-case hex", field));
}

}  // namespace

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::Join: return "join";
    case FrameType::Welcome: return "welcome";
    case FrameType::CatchUp: return "catch-up";
    case FrameType::Ready: return "ready";
    case FrameType::Step: return "step";
    case FrameType::Result: return "result";
    case FrameType::Commit: return "commit";
    case FrameType::Heartbeat: return "heartbeat";
    case FrameType::Leave: return "leave";
    case FrameType::Evicted: return "evicted";
    case FrameType::StatusRequest: return "status request";
    case FrameType::Status: return "status";
    case FrameType::Refused: return "refused";
    case FrameType::Challenge: return "challenge";
    case FrameType::Hello: return "hello";
    case FrameType::HelloOk: return "hello-ok";
  }
  return "unknown";
}

uint32_t max_body_bytes(FrameType t) {
  switch (t) {
    case FrameType::Join: return 512;
    case FrameType::Welcome: return 1 * kMiB;       // the config YAML
    case FrameType::CatchUp: return 4 * kMiB + 64;  // chunks of at most 4 MiB
    case FrameType::Ready: return 128;
    case FrameType::Step: return 64 * 1024;         // up to 16k members
    case FrameType::Result: return 64 * 1024;
    case FrameType::Commit: return 4 * kMiB;
    case FrameType::Heartbeat: return 0;
    case FrameType::Leave: return 1024;
    case FrameType::Evicted: return 1024;
    case FrameType::StatusRequest: return 0;
    case FrameType::Status: return 1 * kMiB;
    case FrameType::Refused: return 1024;
    case FrameType::Challenge: return 32;
    case FrameType::Hello: return 1 + 4 + 64 + 8 + 32 + 32;
    case FrameType::HelloOk: return 32;
  }
  return 0;
}

std::vector<uint8_t> encode_frame(const FrameHeader& h, std::span<const uint8_t> body,
                                  const std::array<uint8_t, 32>* tag_key) {
  if (body.size() > max_body_bytes(h.type))
    throw FrameError(Kind::Oversize, fmt::format("{} body of {} bytes exceeds its cap of {}", frame_type_name(h.type),
                                                 body.size(), max_body_bytes(h.type)));
  Writer w;
  w.num(kFrameMagic);
  w.num(kProtocolVersion);
  w.num(uint16_t(h.type));
  w.num(uint32_t(body.size()));
  w.num(uint32_t(tag_key ? kFlagTagged : 0));
  w.num(h.epoch);
  w.num(h.step);
  w.num(h.sequence);
  const size_t at = w.out.size();
  w.out.resize(at + body.size());
  if (!body.empty()) std::memcpy(w.out.data() + at, body.data(), body.size());
  if (tag_key) {
    const Tag tag = hmac_sha256(*tag_key, w.out);
    w.out.insert(w.out.end(), tag.begin(), tag.end());
  }
  return std::move(w.out);
}

FrameHeader decode_frame_header(std::span<const uint8_t> bytes) {
  if (bytes.size() < kFrameHeaderBytes)
    throw FrameError(Kind::Malformed, fmt::format("frame header of {} bytes, expected {}", bytes.size(),
                                                  kFrameHeaderBytes));
  Reader r(bytes.first(kFrameHeaderBytes), "frame header");
  if (r.num<uint32_t>("magic") != kFrameMagic) throw FrameError(Kind::Malformed, "not a zeroth frame (bad magic)");
  const auto version = r.num<uint16_t>("version");
  if (version != kProtocolVersion)
    throw FrameError(Kind::Malformed, fmt::format("protocol version {} (this build speaks {})", version,
                                                  kProtocolVersion));
  const auto type = r.num<uint16_t>("type");
  if (type < 1 || type > uint16_t(FrameType::HelloOk))
    throw FrameError(Kind::UnknownType, fmt::format("unknown frame type {}", type));
  FrameHeader h;
  h.type = FrameType(type);
  h.length = r.num<uint32_t>("length");
  h.flags = r.num<uint32_t>("flags");
  if ((h.flags & ~kFlagTagged) != 0) throw FrameError(Kind::Malformed, fmt::format("unknown frame flags {:#x}", h.flags));
  h.epoch = r.num<uint64_t>("epoch");
  h.step = r.num<uint64_t>("step");
  h.sequence = r.num<uint64_t>("sequence");
  if (h.length > max_body_bytes(h.type))
    throw FrameError(Kind::Oversize, fmt::format("{} frame declares {} bytes; its cap is {}", frame_type_name(h.type),
                                                 h.length, max_body_bytes(h.type)));
  return h;
}

void verify_tag(std::span<const uint8_t> header, std::span<const uint8_t> body, std::span<const uint8_t> tag,
                const std::array<uint8_t, 32>& key, FrameType type, uint64_t sequence) {
  const Tag want = hmac_sha256(key, std::vector<std::span<const uint8_t>>{header, body});
  if (!equal_constant_time(want, tag))
    throw FrameError(Kind::BadTag, fmt::format("{} frame {} fails its integrity check (altered, replayed or forged)",
                                               frame_type_name(type), sequence));
}

// ---- bodies ------------------------------------------------------------------

std::vector<uint8_t> encode(const JoinMsg& m) {
  Writer w;
  w.str(m.name);
  w.str(m.base_hash);
  w.num(m.steps);
  w.str(m.theta_hash);
  w.num(uint8_t(m.private_data));
  w.str(m.backend);
  return std::move(w.out);
}
JoinMsg decode_join(std::span<const uint8_t> body) {
  Reader r(body, "join");
  JoinMsg m;
  m.name = r.str("name", kNameBytes);
  for (const char c : m.name)
    if (c < 0x20 || c > 0x7e) r.fail("name has a non-printable character");
  m.base_hash = r.str("base_hash", kHashChars);
  check_hash(r, m.base_hash, "base_hash");
  m.steps = r.num<uint64_t>("steps");
  m.theta_hash = r.str("theta_hash", kHashChars);
  check_hash(r, m.theta_hash, "theta_hash");
  m.private_data = r.boolean("private_data");
  m.backend = r.str("backend", kBackendBytes);
  if (m.backend.empty()) r.fail("backend is empty");
  for (const char c : m.backend)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) r.fail("backend has a character outside [a-z0-9-]");
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const WelcomeMsg& m) {
  Writer w;
  w.num(m.member);
  w.str(m.config_yaml);
  w.str(m.base_hash);
  w.num(m.ledger_steps);
  w.num(m.from_step);
  w.num(uint8_t(m.reset));
  return std::move(w.out);
}
WelcomeMsg decode_welcome(std::span<const uint8_t> body) {
  Reader r(body, "welcome");
  WelcomeMsg m;
  m.member = r.num<uint32_t>("member");
  m.config_yaml = r.str("config", kMiB - 64);
  m.base_hash = r.str("base_hash", kHashChars);
  check_hash(r, m.base_hash, "base_hash");
  m.ledger_steps = r.num<uint64_t>("ledger_steps");
  m.from_step = r.num<uint64_t>("from_step");
  if (m.from_step > m.ledger_steps) r.fail("from_step is past the ledger");
  m.reset = r.boolean("reset");
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const CatchUpMsg& m) {
  Writer w;
  w.num(uint8_t(m.part));
  switch (m.part) {
    case CatchUpPart::Snapshot:
      w.num(m.snapshot_step);
      w.num(m.offset);
      w.num(m.total);
      w.bytes(m.bytes);
      break;
    case CatchUpPart::Entries:
      w.num(uint32_t(m.entries.size()));
      for (const auto& e : m.entries) w.bytes(e.serialize());
      break;
    case CatchUpPart::End:
      w.num(m.snapshot_step);
      w.str(m.hash);
      break;
  }
  return std::move(w.out);
}
CatchUpMsg decode_catch_up(std::span<const uint8_t> body) {
  Reader r(body, "catch-up");
  CatchUpMsg m;
  const auto part = r.num<uint8_t>("part");
  if (part < 1 || part > 3) r.fail(fmt::format("unknown part {}", part));
  m.part = CatchUpPart(part);
  switch (m.part) {
    case CatchUpPart::Snapshot: {
      m.snapshot_step = r.num<uint64_t>("snapshot_step");
      m.offset = r.num<uint64_t>("offset");
      m.total = r.num<uint64_t>("total");
      const auto b = r.bytes("chunk", 4 * kMiB);
      if (m.offset > m.total || b.size() > m.total - m.offset) r.fail("chunk lies outside the snapshot");
      m.bytes.assign(b.begin(), b.end());
      break;
    }
    case CatchUpPart::Entries: {
      const auto n = r.num<uint32_t>("count");
      // Each entry takes at least its 4-byte length: the count is bounded by the body.
      if (n > r.remaining() / 4) r.fail(fmt::format("count {} cannot fit in {} bytes", n, r.remaining()));
      for (uint32_t i = 0; i < n; ++i) {
        const auto b = r.bytes("entry", 4 * kMiB);
        try {
          m.entries.push_back(StepEntry::deserialize(b.data(), b.size()));
        } catch (const std::exception& e) {
          r.fail(fmt::format("entry {}: {}", i, e.what()));
        }
        if (i > 0 && m.entries[i].step != m.entries[i - 1].step + 1) r.fail("entries are not consecutive");
      }
      break;
    }
    case CatchUpPart::End:
      m.snapshot_step = r.num<uint64_t>("steps");
      m.hash = r.str("hash", kHashChars);
      check_hash(r, m.hash, "hash");
      break;
  }
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const ReadyMsg& m) {
  Writer w;
  w.num(m.steps);
  w.str(m.theta_hash);
  w.num(uint8_t(m.role));
  return std::move(w.out);
}
ReadyMsg decode_ready(std::span<const uint8_t> body) {
  Reader r(body, "ready");
  ReadyMsg m;
  m.steps = r.num<uint64_t>("steps");
  m.theta_hash = r.str("theta_hash", kHashChars);
  check_hash(r, m.theta_hash, "theta_hash");
  const auto role = r.num<uint8_t>("role");
  if (role > kMaxMemberRole) r.fail("role is not 0 (zo), 1 (grad) or 2 (jvp)");
  m.role = MemberRole(role);
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const StepMsg& m) {
  Writer w;
  w.num(m.step);
  w.num(m.scale);
  w.num(m.lr);
  w.num(m.lanes);
  w.num(uint32_t(m.members.size()));
  for (const uint32_t x : m.members) w.num(x);
  w.num(uint32_t(m.checks.size()));
  for (const auto& c : m.checks) {
    w.num(c.checker);
    w.num(c.target);
    w.num(c.lane);
  }
  return std::move(w.out);
}
StepMsg decode_step(std::span<const uint8_t> body) {
  Reader r(body, "step");
  StepMsg m;
  m.step = r.num<uint64_t>("step");
  m.scale = r.num<float>("scale");
  m.lr = r.num<float>("lr");
  m.lanes = r.num<uint32_t>("lanes");
  const auto n = r.num<uint32_t>("count");
  if (n > r.remaining() / 4) r.fail(fmt::format("{} members cannot fit in {} bytes", n, r.remaining()));
  if (n > m.lanes) r.fail(fmt::format("{} members but only {} lanes", n, m.lanes));
  for (uint32_t i = 0; i < n; ++i) {
    m.members.push_back(r.num<uint32_t>("member"));
    if (i > 0 && m.members[i] <= m.members[i - 1]) r.fail("members are not ascending");
  }
  const auto k = r.num<uint32_t>("checks");
  if (k > r.remaining() / 12) r.fail(fmt::format("{} checks cannot fit in {} bytes", k, r.remaining()));
  for (uint32_t i = 0; i < k; ++i) {
    SpotCheck c;
    c.checker = r.num<uint32_t>("checker");
    c.target = r.num<uint32_t>("target");
    c.lane = r.num<uint32_t>("lane");
    if (c.lane >= m.lanes || c.checker == c.target) r.fail("a spot check with a bad lane or checking itself");
    m.checks.push_back(c);
  }
  if (!(std::isfinite(m.scale) && m.scale > 0) || !std::isfinite(m.lr)) r.fail("scale or lr is not a finite number");
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const ResultMsg& m) {
  Writer w;
  w.num(m.member);
  w.bytes(m.records);
  w.num(m.loss);
  w.num(m.tokens);
  w.str(m.theta_hash);
  w.num(uint32_t(m.checks.size()));
  for (const auto& [target, recs] : m.checks) {
    w.num(target);
    w.bytes(recs);
  }
  return std::move(w.out);
}
ResultMsg decode_result(std::span<const uint8_t> body) {
  Reader r(body, "result");
  ResultMsg m;
  m.member = r.num<uint32_t>("member");
  const auto b = r.bytes("records", 60 * 1024);
  m.records.assign(b.begin(), b.end());
  m.loss = r.num<double>("loss");
  m.tokens = r.num<int64_t>("tokens");
  m.theta_hash = r.str("theta_hash", kHashChars);
  check_hash(r, m.theta_hash, "theta_hash");
  const auto k = r.num<uint32_t>("checks");
  if (k > r.remaining() / 8) r.fail(fmt::format("{} checks cannot fit in {} bytes", k, r.remaining()));
  for (uint32_t i = 0; i < k; ++i) {
    const uint32_t target = r.num<uint32_t>("target");
    const auto c = r.bytes("check records", 60 * 1024);
    m.checks.emplace_back(target, std::vector<uint8_t>(c.begin(), c.end()));
  }
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const CommitMsg& m) {
  Writer w;
  w.bytes(m.entry.serialize());
  return std::move(w.out);
}
CommitMsg decode_commit(std::span<const uint8_t> body) {
  Reader r(body, "commit");
  CommitMsg m;
  const auto b = r.bytes("entry", 4 * kMiB);
  try {
    m.entry = StepEntry::deserialize(b.data(), b.size());
  } catch (const std::exception& e) {
    r.fail(e.what());
  }
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const TextMsg& m) {
  Writer w;
  w.str(m.text);
  return std::move(w.out);
}
TextMsg decode_text(std::span<const uint8_t> body) {
  Reader r(body, "text");
  TextMsg m;
  m.text = r.str("text", kMiB);
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const ChallengeMsg& m) { return {m.nonce.begin(), m.nonce.end()}; }
ChallengeMsg decode_challenge(std::span<const uint8_t> body) {
  Reader r(body, "challenge");
  ChallengeMsg m;
  for (auto& b : m.nonce) b = r.num<uint8_t>("nonce");
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const HelloMsg& m) {
  Writer w;
  w.num(m.kind);
  w.str(m.name);
  w.num(m.expiry);
  for (const uint8_t b : m.nonce) w.num(b);
  for (const uint8_t b : m.proof) w.num(b);
  return std::move(w.out);
}
HelloMsg decode_hello(std::span<const uint8_t> body) {
  Reader r(body, "hello");
  HelloMsg m;
  m.kind = r.num<uint8_t>("kind");
  m.name = r.str("name", kNameBytes);
  m.expiry = r.num<uint64_t>("expiry");
  for (auto& b : m.nonce) b = r.num<uint8_t>("nonce");
  for (auto& b : m.proof) b = r.num<uint8_t>("proof");
  r.finish();
  return m;
}

std::vector<uint8_t> encode(const HelloOkMsg& m) { return {m.proof.begin(), m.proof.end()}; }
HelloOkMsg decode_hello_ok(std::span<const uint8_t> body) {
  Reader r(body, "hello-ok");
  HelloOkMsg m;
  for (auto& b : m.proof) b = r.num<uint8_t>("proof");
  r.finish();
  return m;
}

}  // namespace zeroth::tcp
