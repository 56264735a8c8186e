#include "launch/elastic.h"

#include <cstdint>
#include <fmt/format.h>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace zeroth::cli {

Endpoint parse_endpoint(const std::string& text, const char* what, bool resolve) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    ZEROTH_CHECK(close != std::string::npos && close + 1 < text.size() && text[close + 1] == ':',
                 "{} {}: expected [IPV6]:PORT", what, text);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    ZEROTH_CHECK(colon != std::string::npos, "{} {}: expected HOST:PORT, e.g. 127.0.0.1:7070", what, text);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned long p = 0;
  try {
    size_t used = 0;
    p = std::stoul(port, &used);
    ZEROTH_CHECK(used == port.size() && p <= 65535, "");
  } catch (const std::exception&) {
    throw Error(fmt::format("{} {}: \"{}\" is not a port number (0..65535)", what, text, port));
  }
  if (host.empty()) host = "0.0.0.0";
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (!ec) return {addr, uint16_t(p)};
  ZEROTH_CHECK(resolve, "{} {}: \"{}\" is not an IP address", what, text, host);
  asio::io_context io;
  asio::ip::tcp::resolver r(io);
  const auto results = r.resolve(host, port, ec);
  ZEROTH_CHECK(!ec && !results.empty(), "{} {}: cannot resolve {}: {}", what, text, host, ec.message());
  return results.begin()->endpoint();
}

std::string host_of(const std::string& text) {
  if (!text.empty() && text[0] == '[') return text.substr(1, text.find(']') - 1);
  return text.substr(0, text.rfind(':'));
}

std::shared_ptr<tcp::ssl::context> client_tls(bool tls, const std::string& ca_file) {
  ZEROTH_CHECK(!tls || !ca_file.empty(), "--tls needs --tls-ca FILE: the coordinator's certificate (cert.pem from "
                                         "zeroth token tls) or the CA that signed it");
  ZEROTH_CHECK(tls || ca_file.empty(), "--tls-ca is given without --tls: pass --tls to connect over TLS");
  return tls ? tcp::tls_client_context(ca_file) : nullptr;
}

std::shared_ptr<Connection> connect_to_coordinator(Socket socket, const std::shared_ptr<tcp::ssl::context>& tls,
                                                   const std::string& host) {
  if (!tls) return std::make_shared<Connection>(std::move(socket));
  return std::make_shared<Connection>(std::move(socket), tls, Connection::TlsRole::Client, host);
}

std::optional<Credential> load_credential(const std::string& token, const std::string& secret_file) {
  ZEROTH_CHECK(token.empty() || secret_file.empty(), "give --token or --secret, not both");
  if (!secret_file.empty()) {
    Credential c;
    c.kind = tcp::CredentialKind::Secret;
    c.name = "operator";
    c.key = tcp::read_secret(secret_file);
    return c;
  }
  if (token.empty()) return std::nullopt;
  std::string text = token;
  if (text.rfind("zt1.", 0) != 0) {  // a file holding the token
    ZEROTH_CHECK(!std::filesystem::is_directory(token), "--token {}: is a directory; give a token (zt1....) or "
                 "the file that holds one", token);
    std::ifstream in(token);
    ZEROTH_CHECK(in.good(), "--token {}: neither a token (zt1....) nor a readable file", token);
    std::getline(in, text);
  }
  const tcp::Token t = tcp::parse_token(text);
  Credential c;
  c.kind = tcp::CredentialKind::Token;
  c.name = t.name;
  c.expiry = t.expiry;
  c.key = t.key;
  return c;
}

std::vector<uint8_t> hello_for(const Credential& cred, const tcp::ChallengeMsg& ch, tcp::Nonce& nonce_w) {
  const tcp::HelloProof h = tcp::make_hello(cred.kind, cred.name, cred.expiry, cred.key, ch.nonce);
  nonce_w = h.nonce_w;
  tcp::HelloMsg m;
  m.kind = uint8_t(h.kind);
  m.name = h.name;
  m.expiry = h.expiry;
  m.nonce = h.nonce_w;
  m.proof = h.proof;
  return tcp::encode(m);
}

}  // namespace zeroth::cli
