// Optional TLS for the elastic transport (Boost.Asio ssl over OpenSSL 3).
// TLS 1.3 only, with OpenSSL's default TLS 1.3 suites (AES-GCM, ChaCha20-
// Poly1305). It gives confidentiality on the wire; admission and per-frame
// integrity stay with the HMAC layer (comm/tcp/auth.h), which runs unchanged
// inside it. The worker verifies the coordinator's certificate against a CA
// file, which may simply hold the coordinator's self-signed certificate
// (pinning), and checks the host name or IP it dialled against the SANs.
#pragma once
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <string>
#include <vector>

namespace zeroth::tcp {

namespace ssl = boost::asio::ssl;
using TlsStream = ssl::stream<boost::asio::ip::tcp::socket>;

// The coordinator's context: its certificate (PEM; a chain is allowed) and
// private key. Throws zeroth::Error naming the file when one is missing or
// unreadable, holds no PEM object, or when the two do not belong together.
std::shared_ptr<ssl::context> tls_server_context(const std::string& cert_file, const std::string& key_file);
// A worker's (or zeroth status's) context: trusts only the certificates in
// ca_file (a CA, or the coordinator's own self-signed certificate).
std::shared_ptr<ssl::context> tls_client_context(const std::string& ca_file);
// On a client stream, before its handshake: the certificate must name `host`
// (an IP literal is matched against IP SANs, anything else as a DNS name,
// which is also sent as SNI).
void tls_expect_host(TlsStream& stream, const std::string& host);
// Throws "the key in KEY does not match the certificate in CERT" (and the
// like for unreadable or non-PEM files).
void check_cert_and_key(const std::string& cert_file, const std::string& key_file);

// `zeroth token tls`: a new EC P-256 key (DIR/key.pem, 0600) and a self-signed
// certificate for it (DIR/cert.pem) whose SANs are `names` (DNS names or IP
// literals), valid for `days`. Refuses to overwrite either file unless `force`.
struct SelfSignedRequest {
  std::string dir;
  std::vector<std::string> names = {"localhost", "127.0.0.1"};
  int days = 365;
  bool force = false;
};
struct SelfSignedFiles {
  std::string cert, key;
};
SelfSignedFiles write_self_signed(const SelfSignedRequest& request);

}  // namespace zeroth::tcp
