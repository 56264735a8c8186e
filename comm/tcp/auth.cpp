#include "comm/tcp/auth.h"

#include <cstdint>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "core/file_check.h"
#include "core/error.h"

namespace zeroth::tcp {
namespace {

std::span<const uint8_t> bytes_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::array<uint8_t, 8> le64(uint64_t v) {
  std::array<uint8_t, 8> b{};
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(v >> (8 * i));
  return b;
}

// Length-prefixed parts, so ("ab","c") and ("a","bc") never MAC alike.
Tag mac_parts(std::span<const uint8_t> key, std::initializer_list<std::span<const uint8_t>> parts) {
  std::vector<std::array<uint8_t, 8>> lens;
  lens.reserve(parts.size());
  std::vector<std::span<const uint8_t>> all;
  for (const auto& p : parts) {
    lens.push_back(le64(p.size()));
    all.emplace_back(lens.back());
    all.push_back(p);
  }
  return hmac_sha256(key, all);
}

}  // namespace

Tag hmac_sha256(std::span<const uint8_t> key, const std::vector<std::span<const uint8_t>>& parts) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  ZEROTH_CHECK(mac, "OpenSSL has no HMAC");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  Tag out{};
  size_t n = 0;
  bool ok = ctx && EVP_MAC_init(ctx, key.data(), key.size(), params) == 1;
  for (const auto& p : parts) ok = ok && EVP_MAC_update(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_MAC_final(ctx, out.data(), &n, out.size()) == 1 && n == out.size();
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  ZEROTH_CHECK(ok, "HMAC-SHA256 failed in OpenSSL");
  return out;
}

Tag hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  return hmac_sha256(key, std::vector<std::span<const uint8_t>>{data});
}

bool equal_constant_time(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Nonce random_nonce() {
  Nonce n{};
  ZEROTH_CHECK(RAND_bytes(n.data(), int(n.size())) == 1, "OpenSSL could not produce random bytes");
  return n;
}

std::string to_hex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (const uint8_t x : b) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

template <size_t N>
std::array<uint8_t, N> from_hex(const std::string& hex, const std::string& what) {
  ZEROTH_CHECK(hex.size() == 2 * N, "{}: expected {} hex digits, found {} characters", what, 2 * N, hex.size());
  std::array<uint8_t, N> out{};
  auto digit = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw Error(fmt::format("{}: '{}' is not a hex digit", what, c));
  };
  for (size_t i = 0; i < N; ++i) out[i] = uint8_t(digit(hex[2 * i]) * 16 + digit(hex[2 * i + 1]));
  return out;
}
template std::array<uint8_t, 32> from_hex<32>(const std::string&, const std::string&);

Key read_secret(const std::string& path) {
  check_input_file(path, "the run secret");
  std::ifstream in(path);
  ZEROTH_CHECK(in.good(), "{}: cannot read the run secret (create one with `zeroth token secret {}`)", path, path);
  std::string hex;
  std::getline(in, hex);
  return from_hex<32>(hex, path + " (the run secret)");
}

void write_new_secret(const std::string& path) {
  ZEROTH_CHECK(!std::filesystem::exists(path), "{} already exists; a run secret is never overwritten", path);
  const Nonce k = random_nonce();
  {
    std::ofstream out(path);
    ZEROTH_CHECK(out.good(), "{}: cannot create the secret file", path);
  }
  ::chmod(path.c_str(), 0600);
  std::ofstream out(path, std::ios::trunc);
  out << to_hex(k) << "\n";
  ZEROTH_CHECK(out.good(), "{}: cannot write the secret", path);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string Token::text() const { return fmt::format("zt1.{}.{}.{}", name, expiry, to_hex(key)); }

Token issue_token(const Key& secret, const std::string& name, uint64_t expiry) {
  ZEROTH_CHECK(valid_name(name), "token name \"{}\": use 1..64 letters, digits, '_' or '-'", name);
  Token t;
  t.name = name;
  t.expiry = expiry;
  const auto e = le64(expiry);
  t.key = mac_parts(secret, {bytes_of("zeroth-token-v1"), bytes_of(name), e});
  return t;
}

Token parse_token(const std::string& text) {
  const auto bad = [&](const char* why) { return Error(fmt::format("not a zeroth token ({}): expected zt1.NAME.EXPIRY.MAC", why)); };
  if (text.rfind("zt1.", 0) != 0) throw bad("no zt1. prefix");
  const size_t a = 4, b = text.find('.', a), c = b == std::string::npos ? b : text.find('.', b + 1);
  if (b == std::string::npos || c == std::string::npos) throw bad("missing fields");
  Token t;
  t.name = text.substr(a, b - a);
  if (!valid_name(t.name)) throw bad("bad name");
  try {
    size_t used = 0;
    const std::string e = text.substr(b + 1, c - b - 1);
    t.expiry = std::stoull(e, &used);
    if (used != e.size()) throw bad("bad expiry");
  } catch (const std::logic_error&) {
    throw bad("bad expiry");
  }
  std::string mac = text.substr(c + 1);
  while (!mac.empty() && (mac.back() == '\n' || mac.back() == '\r' || mac.back() == ' ')) mac.pop_back();
  t.key = from_hex<32>(mac, "token MAC");
  return t;
}

HelloProof make_hello(CredentialKind kind, const std::string& name, uint64_t expiry, const Key& key,
                      const Nonce& nonce_c) {
  HelloProof h;
  h.kind = kind;
  h.name = name;
  h.expiry = expiry;
  h.nonce_w = random_nonce();
  const uint8_t k = uint8_t(kind);
  const auto e = le64(expiry);
  h.proof = mac_parts(key, {bytes_of("zeroth-hello-v1"), nonce_c, h.nonce_w, std::span<const uint8_t>(&k, 1),
                            bytes_of(name), e});
  return h;
}

bool check_hello_ok(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w, const Tag& proof) {
  const Tag want = mac_parts(key, {bytes_of("zeroth-hello-ok-v1"), nonce_c, nonce_w});
  return equal_constant_time(want, proof);
}

SessionKeys worker_keys(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w) {
  SessionKeys s;
  s.send = mac_parts(key, {bytes_of("zeroth-w2c-v1"), nonce_c, nonce_w});
  s.recv = mac_parts(key, {bytes_of("zeroth-c2w-v1"), nonce_c, nonce_w});
  return s;
}

Authenticator::Verdict Authenticator::verify(const HelloProof& h, const Nonce& nonce_c, uint64_t now_unix) const {
  Verdict v;
  Key key{};
  if (h.kind == CredentialKind::Secret) {
    key = secret_;
  } else if (h.kind == CredentialKind::Token) {
    if (!valid_name(h.name)) {
      v.why = "bad member name";
      return v;
    }
    key = issue_token(secret_, h.name, h.expiry).key;
  } else {
    v.why = "unknown credential kind";
    return v;
  }
  const uint8_t k = uint8_t(h.kind);
  const auto e = le64(h.expiry);
  const Tag want = mac_parts(key, {bytes_of("zeroth-hello-v1"), nonce_c, h.nonce_w, std::span<const uint8_t>(&k, 1),
                                   bytes_of(h.name), e});
  // Check the proof first: what follows reveals nothing to someone without a key.
  if (!equal_constant_time(want, h.proof)) {
    v.why = "the credential's proof is wrong (bad token or secret)";
    return v;
  }
  if (h.kind == CredentialKind::Token && h.expiry <= now_unix) {
    v.why = fmt::format("token {} expired {} s ago", h.name, now_unix - h.expiry);
    return v;
  }
  if (revoked_.count(h.name)) {
    v.why = fmt::format("token {} was revoked", h.name);
    return v;
  }
  v.key = key;
  return v;
}

Tag Authenticator::hello_ok(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w) const {
  return mac_parts(key, {bytes_of("zeroth-hello-ok-v1"), nonce_c, nonce_w});
}

SessionKeys Authenticator::coordinator_keys(const Key& key, const Nonce& nonce_c, const Nonce& nonce_w) const {
  const SessionKeys w = worker_keys(key, nonce_c, nonce_w);
  return {w.recv, w.send};
}

std::set<std::string> read_revoked(const std::string& path) {
  std::set<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (valid_name(line)) out.insert(line);
  return out;
}

void append_revoked(const std::string& path, const std::string& name) {
  ZEROTH_CHECK(valid_name(name), "cannot revoke \"{}\": not a member name", name);
  std::ofstream out(path, std::ios::app);
  out << name << "\n";
  out.flush();
  ZEROTH_CHECK(out.good(), "{}: cannot append to the revocation list", path);
}

}  // namespace zeroth::tcp
