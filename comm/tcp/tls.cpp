#include "comm/tcp/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "core/file_check.h"
#include "core/error.h"

namespace zeroth::tcp {
namespace {

// OpenSSL objects freed on scope exit.
struct BioFree { void operator()(BIO* b) const { BIO_free(b); } };
struct PkeyFree { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct X509Free { void operator()(X509* x) const { X509_free(x); } };
struct ExtFree { void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); } };
using Bio = std::unique_ptr<BIO, BioFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

// The oldest queued OpenSSL error, in words (and the queue cleared).
std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string read_pem_file(const std::string& path, const char* what) {
  std::error_code ec;
  ZEROTH_CHECK(std::filesystem::is_regular_file(path, ec), "{} {}: no such file", what, path);
  check_input_file(path, what);
  std::ifstream in(path, std::ios::binary);
  ZEROTH_CHECK(in.good(), "{} {}: cannot read it: {}", what, path, std::strerror(errno));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Cert load_cert(const std::string& path, const char* what) {
  const std::string pem = read_pem_file(path, what);
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  Cert x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!x) ERR_clear_error();
  ZEROTH_CHECK(x, "{} {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", what, path);
  return x;
}

Pkey load_key(const std::string& path, const char* what) {
  const std::string pem = read_pem_file(path, what);
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  Pkey k(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!k) ERR_clear_error();
  ZEROTH_CHECK(k, "{} {}: holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)", what, path);
  return k;
}

void tls13_only(ssl::context& ctx) {
  ZEROTH_CHECK(SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION) == 1,
               "this OpenSSL cannot do TLS 1.3: {}", openssl_error());
}

bool is_ip(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

// A SAN entry: a DNS name (letters, digits, '-', '.', a leading "*.") or an IP literal.
void check_name(const std::string& n) {
  if (is_ip(n)) return;
  bool ok = !n.empty() && n.size() <= 253;
  for (size_t i = 0; ok && i < n.size(); ++i) {
    const char c = n[i];
    ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || (c == '*' && i == 0 && n.size() > 2 && n[1] == '.');
  }
  ZEROTH_CHECK(ok, "--name \"{}\": not a host name or IP address", n);
}

void add_ext(X509* x, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
  ZEROTH_CHECK(ext && X509_add_ext(x, ext.get(), -1) == 1, "cannot add the certificate extension {}: {}", value,
               openssl_error());
}

// Writes `bytes` to a new file of mode `mode` (replacing one only if `force`).
void write_file(const std::string& path, const std::string& bytes, mode_t mode, bool force) {
  if (force) ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
  ZEROTH_CHECK(fd >= 0, "{}: cannot create it: {}", path, std::strerror(errno));
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size());
  const bool closed = ::close(fd) == 0;
  ZEROTH_CHECK(ok && closed, "{}: cannot write it: {}", path, std::strerror(errno));
}

std::string pem_of(const std::function<int(BIO*)>& write) {
  Bio bio(BIO_new(BIO_s_mem()));
  ZEROTH_CHECK(write(bio.get()) == 1, "cannot encode PEM: {}", openssl_error());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

}  // namespace

void check_cert_and_key(const std::string& cert_file, const std::string& key_file) {
  const Cert cert = load_cert(cert_file, "--tls-cert");
  const Pkey key = load_key(key_file, "--tls-key");
  const int eq = EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.get());
  ERR_clear_error();
  ZEROTH_CHECK(eq == 1, "the key in {} does not match the certificate in {}", key_file, cert_file);
}

std::shared_ptr<ssl::context> tls_server_context(const std::string& cert_file, const std::string& key_file) {
  check_cert_and_key(cert_file, key_file);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  tls13_only(*ctx);
  SSL_CTX* c = ctx->native_handle();
  ZEROTH_CHECK(SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) == 1, "--tls-cert {}: {}", cert_file,
               openssl_error());
  ZEROTH_CHECK(SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) == 1, "--tls-key {}: {}", key_file,
               openssl_error());
  ZEROTH_CHECK(SSL_CTX_check_private_key(c) == 1, "the key in {} does not match the certificate in {}", key_file,
               cert_file);
  // Nothing to resume across reconnects: a full handshake each time.
  SSL_CTX_set_num_tickets(c, 0);
  return ctx;
}

std::shared_ptr<ssl::context> tls_client_context(const std::string& ca_file) {
  load_cert(ca_file, "--tls-ca");  // a clear error for a missing or non-PEM file
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  tls13_only(*ctx);
  ZEROTH_CHECK(SSL_CTX_load_verify_locations(ctx->native_handle(), ca_file.c_str(), nullptr) == 1, "--tls-ca {}: {}",
               ca_file, openssl_error());
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

void tls_expect_host(TlsStream& stream, const std::string& host) {
  SSL* s = stream.native_handle();
  if (is_ip(host)) {
    ZEROTH_CHECK(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host.c_str()) == 1, "bad IP address {}", host);
  } else {
    ZEROTH_CHECK(SSL_set1_host(s, host.c_str()) == 1 && SSL_set_tlsext_host_name(s, host.c_str()) == 1,
                 "bad host name {}: {}", host, openssl_error());
  }
}

SelfSignedFiles write_self_signed(const SelfSignedRequest& r) {
  namespace fs = std::filesystem;
  ZEROTH_CHECK(!r.names.empty(), "--name: at least one host name or IP address");
  for (const auto& n : r.names) check_name(n);
  ZEROTH_CHECK(r.days >= 1 && r.days <= 3650, "--days {}: use 1..3650", r.days);
  const SelfSignedFiles f{(fs::path(r.dir) / "cert.pem").string(), (fs::path(r.dir) / "key.pem").string()};
  std::error_code ec;
  fs::create_directories(r.dir, ec);
  ZEROTH_CHECK(fs::is_directory(r.dir), "--out {}: cannot create the directory: {}", r.dir, ec.message());
  if (!r.force)
    for (const auto& p : {f.cert, f.key})
      ZEROTH_CHECK(!fs::exists(p), "{} already exists; pass --force to replace it", p);

  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ZEROTH_CHECK(key, "cannot generate an EC P-256 key: {}", openssl_error());
  Cert x(X509_new());
  ZEROTH_CHECK(x && X509_set_version(x.get(), X509_VERSION_3) == 1, "X509_new: {}", openssl_error());
  // A random 127-bit positive serial.
  unsigned char serial[16];
  ZEROTH_CHECK(RAND_bytes(serial, sizeof serial) == 1, "no randomness: {}", openssl_error());
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);  // an hour of clock skew
  X509_gmtime_adj(X509_getm_notAfter(x.get()), long(r.days) * 86400);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(r.names[0].c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x.get(), name);
  ZEROTH_CHECK(X509_set_pubkey(x.get(), key.get()) == 1, "X509_set_pubkey: {}", openssl_error());
  std::string san;
  for (const auto& n : r.names) san += fmt::format("{}{}:{}", san.empty() ? "" : ",", is_ip(n) ? "IP" : "DNS", n);
  add_ext(x.get(), NID_subject_alt_name, san);
  add_ext(x.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(x.get(), NID_ext_key_usage, "serverAuth");
  add_ext(x.get(), NID_subject_key_identifier, "hash");
  ZEROTH_CHECK(X509_sign(x.get(), key.get(), EVP_sha256()) > 0, "cannot sign the certificate: {}", openssl_error());

  write_file(f.key, pem_of([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); }),
             0600, r.force);
  write_file(f.cert, pem_of([&](BIO* b) { return PEM_write_bio_X509(b, x.get()); }), 0644, r.force);
  return f;
}

}  // namespace zeroth::tcp
