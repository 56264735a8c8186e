// Volunteer authentication and frame integrity (OpenSSL 3: EVP_MAC HMAC-SHA256,
// RAND_bytes, CRYPTO_memcmp).
//
// Credentials. A run has a secret: 32 random bytes kept in a file (hex) that
// only the operator holds. From it the operator issues member tokens:
//   zt1.<name>.<expiry unix seconds>.<64 hex: HMAC(secret, "zeroth-token-v1|name|expiry")>
// The token's MAC is that member's key; the coordinator recomputes it from
// the public parts, so it stores no per-member state, and revokes by name.
// The operator's own workers may use the run secret itself (name "operator").
//
// Handshake (no secret ever crosses the wire):
//   coordinator → Challenge: nonce_c (32 random bytes)
//   worker      → Hello: kind, name, expiry, nonce_w, proof = HMAC(K, "zeroth-hello-v1" | nonce_c | nonce_w | kind | name | expiry)
//   coordinator → HelloOk: proof' = HMAC(K, "zeroth-hello-ok-v1" | nonce_c | nonce_w)   (mutual)
// then both derive per-direction session keys
//   k_w2c = HMAC(K, "zeroth-w2c-v1" | nonce_c | nonce_w),  k_c2w = HMAC(K, "zeroth-c2w-v1" | ...)
// and every later frame carries a 32-byte tag HMAC(k_dir, header | body).
// With the per-connection sequence numbers in the header, a replayed,
// reordered, truncated or altered frame fails, and so does a frame replayed
// from another session (other nonces, other keys).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace zeroth::tcp {

using Key = std::array<uint8_t, 32>;
using Tag = std::array<uint8_t, 32>;
using Nonce = std::array<uint8_t, 32>;

Tag hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);
Tag hmac_sha256(std::span<const uint8_t> key, const std::vector<std::span<const uint8_t>>& parts);
bool equal_constant_time(std::span<const uint8_t> a, std::span<const uint8_t> b);
Nonce random_nonce();
std::string to_hex(std::span<const uint8_t> b);
// Throws zeroth::Error naming `what` unless `hex` is exactly 2·N hex digits.
template <size_t N>
std::array<uint8_t, N> from_hex(const std::string& hex, const std::string& what);

// The run secret file: 64 hex digits (and an optional newline).
Key read_secret(const std::string& path);
// Creates a new secret file (mode 0600); refuses to overwrite one.
void write_new_secret(const std::string& path);

struct Token {
  std::string name;
  uint64_t expiry = 0;  // unix seconds
  Key key{};            // the MAC: the member's key
  std::string text() const;
};
Token issue_token(const Key& secret, const std::string& name, uint64_t expiry);
// Parses "zt1.name.expiry.mac"; the MAC is checked only by the coordinator.
Token parse_token(const std::string& text);
// Names: 1..64 of [A-Za-z0-9_-].
bool valid_name(const std::string& name);

enum class CredentialKind : uint8_t { Secret = 1, Token = 2 };

struct HelloProof {
  CredentialKind kind = CredentialKind::Token;
  std::string name;
  uint64_t expiry = 0;
  Nonce nonce_w{};
  Tag proof{};
};

struct SessionKeys {
  Key send{}, recv{};
};

// Worker side: the Hello for `challenge`, and (after HelloOk) the keys.
HelloProof make_hello(CredentialKind kind, const std::string& name, uint64_t expiry, const Key& key,
                      const Nonce& nonce_c);
bool check_hello_ok(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w, const Tag& proof);
SessionKeys worker_keys(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w);

// Coordinator side.
class Authenticator {
 public:
  explicit Authenticator(Key secret) : secret_(secret) {}
  // The key a hello claims (recomputed from the secret), or why it is refused:
  // unknown kind, bad name, expired, revoked, wrong proof.
  struct Verdict {
    std::optional<Key> key;
    std::string why;
  };
  Verdict verify(const HelloProof& h, const Nonce& nonce_c, uint64_t now_unix) const;
  Tag hello_ok(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w) const;
  SessionKeys coordinator_keys(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w) const;
  void set_revoked(std::set<std::string> names) { revoked_ = std::move(names); }
  const std::set<std::string>& revoked() const { return revoked_; }

 private:
  Key secret_;
  std::set<std::string> revoked_;
};

// Revocation list: one name per line, in the run directory ("revoked").
std::set<std::string> read_revoked(const std::string& path);
void append_revoked(const std::string& path, const std::string& name);

}  // namespace zeroth::tcp
