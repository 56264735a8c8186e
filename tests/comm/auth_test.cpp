// Authentication and frame integrity (comm/tcp/auth.h):
//   - tokens round-trip; the coordinator accepts a valid hello and refuses a
//     wrong secret, a forged name or expiry, an expired or revoked token, and
//     a hello answered to another challenge (replayed);
//   - worker and coordinator derive crossed session keys; HelloOk proves the
//     coordinator knows the key;
//   - 10^5 random single-bit flips anywhere in a tagged frame are all rejected
//     by what a receiver checks (header, framing, tag, sequence).
#include <cstdint>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "comm/tcp/auth.h"
#include "comm/tcp/frame.h"
#include "core/error.h"

namespace zeroth::tcp {
namespace {

Key secret_of(uint8_t seed) {
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(seed * 31 + i);
  return k;
}

TEST(Auth, TokensRoundTripAndVerify) {
  const Key secret = secret_of(1);
  const Token t = issue_token(secret, "alice", 2000000000);
  const Token back = parse_token(t.text());
  EXPECT_EQ(back.name, "alice");
  EXPECT_EQ(back.expiry, 2000000000u);
  EXPECT_EQ(back.key, t.key);
  EXPECT_THROW(parse_token("zt1.alice.20.xyz"), Error);
  EXPECT_THROW(parse_token("zt2.alice.20." + std::string(64, '0')), Error);
  EXPECT_THROW(parse_token("zt1.al ice.20." + std::string(64, '0')), Error);
  EXPECT_THROW(issue_token(secret, "a/b", 1), Error);

  Authenticator auth(secret);
  const Nonce c = random_nonce();
  const uint64_t now = 1900000000;
  const auto ok = auth.verify(make_hello(CredentialKind::Token, "alice", t.expiry, t.key, c), c, now);
  ASSERT_TRUE(ok.key.has_value()) << ok.why;
  EXPECT_EQ(*ok.key, t.key);
  // The operator's secret itself.
  EXPECT_TRUE(auth.verify(make_hello(CredentialKind::Secret, "operator", 0, secret, c), c, now).key.has_value());
  // A token from another run's secret; a forged name or expiry on a real MAC.
  const Token other = issue_token(secret_of(2), "alice", t.expiry);
  EXPECT_FALSE(auth.verify(make_hello(CredentialKind::Token, "alice", t.expiry, other.key, c), c, now).key);
  EXPECT_FALSE(auth.verify(make_hello(CredentialKind::Token, "mallory", t.expiry, t.key, c), c, now).key);
  EXPECT_FALSE(auth.verify(make_hello(CredentialKind::Token, "alice", t.expiry + 1, t.key, c), c, now).key);
  EXPECT_FALSE(auth.verify(make_hello(CredentialKind::Secret, "operator", 0, t.key, c), c, now).key);
  // Expired; revoked.
  const auto late = auth.verify(make_hello(CredentialKind::Token, "alice", t.expiry, t.key, c), c, t.expiry + 5);
  EXPECT_FALSE(late.key);
  EXPECT_NE(late.why.find("expired"), std::string::npos) << late.why;
  auth.set_revoked({"alice"});
  const auto rev = auth.verify(make_hello(CredentialKind::Token, "alice", t.expiry, t.key, c), c, now);
  EXPECT_FALSE(rev.key);
  EXPECT_NE(rev.why.find("revoked"), std::string::npos) << rev.why;
  auth.set_revoked({});
  // A hello made for one challenge, replayed against another.
  const HelloProof h = make_hello(CredentialKind::Token, "alice", t.expiry, t.key, c);
  EXPECT_FALSE(auth.verify(h, random_nonce(), now).key);
}

TEST(Auth, SessionKeysAreCrossedAndHelloOkProves) {
  const Key secret = secret_of(3);
  const Token t = issue_token(secret, "bob", 4000000000);
  Authenticator auth(secret);
  const Nonce c = random_nonce();
  const HelloProof h = make_hello(CredentialKind::Token, "bob", t.expiry, t.key, c);
  const SessionKeys w = worker_keys(t.key, c, h.nonce_w);
  const SessionKeys k = auth.coordinator_keys(t.key, c, h.nonce_w);
  EXPECT_EQ(w.send, k.recv);
  EXPECT_EQ(w.recv, k.send);
  EXPECT_NE(w.send, w.recv);
  EXPECT_TRUE(check_hello_ok(t.key, c, h.nonce_w, auth.hello_ok(t.key, c, h.nonce_w)));
  EXPECT_FALSE(check_hello_ok(t.key, c, h.nonce_w, auth.hello_ok(secret, c, h.nonce_w)));
  // Another session (other nonces) has other keys.
  EXPECT_NE(worker_keys(t.key, random_nonce(), h.nonce_w).send, w.send);
}

TEST(Auth, SecretFiles) {
  namespace fs = std::filesystem;
  const auto dir = fs::temp_directory_path() / ("zeroth-auth-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "secret").string();
  write_new_secret(path);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const Key k = read_secret(path);
  EXPECT_THROW(write_new_secret(path), Error);  // never overwritten
  EXPECT_EQ(read_secret(path), k);
  std::ofstream(dir / "bad") << "not hex\n";
  EXPECT_THROW(read_secret((dir / "bad").string()), Error);
  append_revoked((dir / "revoked").string(), "carol");
  append_revoked((dir / "revoked").string(), "dave");
  EXPECT_EQ(read_revoked((dir / "revoked").string()), (std::set<std::string>{"carol", "dave"}));
  fs::remove_all(dir);
}

// What a receiver on an authenticated connection checks, in its order:
// header fields and cap, the tagged flag, that the stream holds exactly the
// declared body and tag, the tag, and the sequence number.
bool receiver_accepts(const std::vector<uint8_t>& f, const Key& key, uint64_t expect_seq) {
  try {
    const FrameHeader h = decode_frame_header(f);
    if (!(h.flags & kFlagTagged)) return false;
    if (f.size() != kFrameHeaderBytes + h.length + kTagBytes) return false;
    const std::span<const uint8_t> all(f);
    verify_tag(all.first(kFrameHeaderBytes), all.subspan(kFrameHeaderBytes, h.length),
               all.subspan(kFrameHeaderBytes + h.length), key, h.type, h.sequence);
    return h.sequence == expect_seq;
  } catch (const FrameError&) {
    return false;
  }
}

TEST(Auth, EverySingleBitFlipInATaggedFrameIsRejected) {
  const Key key = secret_of(4);
  std::vector<uint8_t> body(61);
  for (size_t i = 0; i < body.size(); ++i) body[i] = uint8_t(i * 7);
  const auto f = encode_frame({FrameType::Result, uint32_t(body.size()), 0, 3, 17, 5}, body, &key);
  ASSERT_TRUE(receiver_accepts(f, key, 5));
  EXPECT_FALSE(receiver_accepts(f, key, 6));          // replayed or reordered
  EXPECT_FALSE(receiver_accepts(f, secret_of(5), 5));  // another session's key
  std::mt19937_64 rng(11);
  int rejected = 0;
  constexpr int kFlips = 100000;
  for (int i = 0; i < kFlips; ++i) {
    auto g = f;
    const size_t bit = rng() % (g.size() * 8);
    g[bit / 8] ^= uint8_t(1u << (bit % 8));
    rejected += !receiver_accepts(g, key, 5);
  }
  EXPECT_EQ(rejected, kFlips);
}

}  // namespace
}  // namespace zeroth::tcp
