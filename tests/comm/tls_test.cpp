// TLS for the TCP transport (comm/tcp/tls.h, comm/tcp/connection.h), on
// loopback with one io_context:
//   - a TLS pair exchanges HMAC-tagged frames both ways, the bytes on the
//     socket exceed the frame bytes (TLS records), and both ends are TLS;
//   - a certificate from another CA, or one that does not name the host
//     dialled, is refused by the client, and the server sees a TLS failure;
//   - a plaintext client on a TLS server is told so in one plaintext Refused
//     frame, and a TLS client on a plaintext server gets a TLS error; the
//     server counts a TLS failure either way, within seconds;
//   - a TLS server whose client never starts the handshake ends with a TLS
//     error when closed (the coordinator's time limit);
//   - `zeroth token tls` files: 0600 key, never overwritten without force, and
//     clear errors for missing, non-PEM and mismatched files.
#include <cstdint>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "comm/tcp/connection.h"
#include "comm/tcp/tls.h"
#include "core/error.h"

namespace zeroth::tcp {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("zeroth-tls-test-" + tag + "-" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Two certificates (A, B), each self-signed for localhost and 127.0.0.1.
struct Certs {
  TempDir tmp{"certs"};
  SelfSignedFiles a, b;
  Certs() {
    a = write_self_signed({(tmp.path / "a").string()});
    b = write_self_signed({(tmp.path / "b").string()});
  }
};
const Certs& certs() {
  static const Certs c;
  return c;
}

// What one end of a connection saw.
struct End {
  std::shared_ptr<Connection> conn;
  std::vector<std::string> texts;  // Status frames' texts, in order
  std::string refused;             // a Refused frame's text
  bool closed = false;
  std::string why;
  std::optional<FrameError::Kind> kind;
};

// A server end (TLS when server_tls) and a client end (TLS with client_tls,
// checking `host`) over loopback; `setup` runs once both exist, and the loop
// runs until both have closed or `limit` passes.
struct Pair {
  asio::io_context io;
  End server, client;
  std::shared_ptr<ssl::context> server_tls, client_tls;
  std::string host = "127.0.0.1";

  void run(const std::function<void()>& setup, std::chrono::seconds limit = std::chrono::seconds(10)) {
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    tcp::socket cs(io);
    cs.connect(acceptor.local_endpoint());
    tcp::socket ss = acceptor.accept();
    server.conn = server_tls ? std::make_shared<Connection>(std::move(ss), server_tls, Connection::TlsRole::Server)
                             : std::make_shared<Connection>(std::move(ss));
    client.conn = client_tls ? std::make_shared<Connection>(std::move(cs), client_tls, Connection::TlsRole::Client, host)
                             : std::make_shared<Connection>(std::move(cs));
    for (End* e : {&server, &client}) {
      e->conn->start(
          [e](const FrameHeader& h, std::vector<uint8_t> body) {
            if (h.type == FrameType::Status) e->texts.push_back(decode_text(body).text);
            if (h.type == FrameType::Refused) e->refused = decode_text(body).text;
          },
          [this, e](const std::string& why, const FrameError* bad) {
            e->closed = true;
            e->why = why;
            if (bad) e->kind = bad->kind();
            if (server.closed && client.closed) io.stop();
          });
    }
    setup();
    io.run_for(limit);
  }
};

std::vector<uint8_t> text(const std::string& s) { return encode(TextMsg{s}); }

Key key_of(uint8_t seed) {
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(seed + 7 * i);
  return k;
}

TEST(Tls, TaggedFramesCrossBothWays) {
  Pair p;
  p.server_tls = tls_server_context(certs().a.cert, certs().a.key);
  p.client_tls = tls_client_context(certs().a.cert);
  const Key k = key_of(5);
  const Nonce nc = random_nonce(), nw = random_nonce();
  p.run([&] {
    p.server.conn->set_keys(Authenticator(k).coordinator_keys(k, nc, nw));
    p.client.conn->set_keys(worker_keys(k, nc, nw));
    for (int i = 0; i < 3; ++i) {
      p.client.conn->send(FrameType::Status, 1, uint64_t(i), text("to server " + std::to_string(i)));
      p.server.conn->send(FrameType::Status, 1, uint64_t(i), text(std::string(5000, char('a' + i))));
    }
    // Close once each side has all three (polled on the loop).
    auto poll = std::make_shared<asio::steady_timer>(p.io);
    auto check = std::make_shared<std::function<void()>>();
    *check = [&, poll, check] {
      if (p.server.texts.size() == 3 && p.client.texts.size() == 3) {
        p.client.conn->close("done");
        p.server.conn->close("done");
        return;
      }
      poll->expires_after(std::chrono::milliseconds(5));
      poll->async_wait([check](boost::system::error_code ec) {
        if (!ec) (*check)();
      });
    };
    (*check)();
  });
  ASSERT_EQ(p.server.texts.size(), 3u) << p.server.why;
  ASSERT_EQ(p.client.texts.size(), 3u) << p.client.why;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p.server.texts[size_t(i)], "to server " + std::to_string(i));
    EXPECT_EQ(p.client.texts[size_t(i)], std::string(5000, char('a' + i)));
  }
  EXPECT_TRUE(p.server.conn->tls());
  EXPECT_TRUE(p.client.conn->tls());
  // TLS records and the handshake add to the frame bytes on the socket.
  EXPECT_GT(p.client.conn->wire_bytes_out(), p.client.conn->bytes_out());
  EXPECT_GT(p.server.conn->wire_bytes_out(), p.server.conn->bytes_out() + 3 * 16);
  EXPECT_FALSE(p.server.kind.has_value()) << p.server.why;
}

void expect_refused(Pair& p, const std::string& want, bool plaintext_client = false) {
  p.run([&] { p.client.conn->send(FrameType::Status, 1, 0, text("hello")); });
  ASSERT_TRUE(p.client.closed && p.server.closed) << "the connection did not end";
  if (plaintext_client) {  // told why in plaintext, and then closed
    EXPECT_NE(p.client.refused.find(want), std::string::npos) << p.client.refused << " / " << p.client.why;
    EXPECT_EQ(p.server.kind, FrameError::Kind::Tls) << p.server.why;
    return;
  }
  EXPECT_EQ(p.client.kind, FrameError::Kind::Tls) << p.client.why;
  EXPECT_EQ(p.server.kind, FrameError::Kind::Tls) << p.server.why;
  EXPECT_NE(p.client.why.find(want), std::string::npos) << p.client.why;
  EXPECT_TRUE(p.server.texts.empty());
}

TEST(Tls, CertificateFromAnotherCaIsRefused) {
  Pair p;
  p.server_tls = tls_server_context(certs().b.cert, certs().b.key);
  p.client_tls = tls_client_context(certs().a.cert);
  expect_refused(p, "certificate was not accepted");
  EXPECT_TRUE(p.client.conn->tls_mismatch());
}

TEST(Tls, CertificateMustNameTheHostDialled) {
  for (const std::string host : {"coordinator.example", "10.1.2.3"}) {
    Pair p;
    p.host = host;
    p.server_tls = tls_server_context(certs().a.cert, certs().a.key);
    p.client_tls = tls_client_context(certs().a.cert);
    expect_refused(p, "mismatch");
  }
  Pair ok;  // and "localhost" is among its names
  ok.host = "localhost";
  ok.server_tls = tls_server_context(certs().a.cert, certs().a.key);
  ok.client_tls = tls_client_context(certs().a.cert);
  ok.run([&] {
    ok.client.conn->send(FrameType::Status, 1, 0, text("hi"));
    ok.client.conn->close("done");
  });
  ASSERT_EQ(ok.server.texts.size(), 1u) << ok.server.why << " / " << ok.client.why;
}

TEST(Tls, PlaintextClientOnTlsServerEndsCleanly) {
  Pair p;
  p.server_tls = tls_server_context(certs().a.cert, certs().a.key);
  expect_refused(p, "this coordinator requires TLS: connect with --tls --tls-ca FILE", true);
  EXPECT_NE(p.server.why.find("does not speak TLS"), std::string::npos) << p.server.why;
  EXPECT_TRUE(p.server.texts.empty());
}

TEST(Tls, TlsClientOnPlaintextServerEndsCleanly) {
  Pair p;
  p.client_tls = tls_client_context(certs().a.cert);
  p.run([] {});  // the client's ClientHello is all that is sent
  ASSERT_TRUE(p.client.closed && p.server.closed);
  EXPECT_EQ(p.server.kind, FrameError::Kind::Tls) << p.server.why;
  EXPECT_NE(p.server.why.find("speaks TLS and this end does not"), std::string::npos) << p.server.why;
  EXPECT_EQ(p.client.kind, FrameError::Kind::Tls) << p.client.why;
  EXPECT_NE(p.client.why.find("TLS handshake"), std::string::npos) << p.client.why;
}

TEST(Tls, NoHandshakeBeforeCloseIsATlsFailure) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket silent(io);
  silent.connect(acceptor.local_endpoint());
  auto server = std::make_shared<Connection>(acceptor.accept(), tls_server_context(certs().a.cert, certs().a.key),
                                             Connection::TlsRole::Server);
  std::optional<FrameError::Kind> kind;
  std::string why;
  server->start([](const FrameHeader&, std::vector<uint8_t>) {},
                [&](const std::string& w, const FrameError* bad) {
                  why = w;
                  if (bad) kind = bad->kind();
                });
  asio::steady_timer limit(io, std::chrono::milliseconds(100));
  limit.async_wait([&](boost::system::error_code) { server->close("no join in time", false); });
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(kind, FrameError::Kind::Tls) << why;
  EXPECT_NE(why.find("no TLS handshake"), std::string::npos) << why;
}

TEST(Tls, CertificateFilesAndTheirErrors) {
  TempDir tmp("files");
  const std::string dir = (tmp.path / "c").string();
  const auto f = write_self_signed({dir, {"coord.example", "192.0.2.7"}, 30});
  struct stat st {};
  ASSERT_EQ(::stat(f.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NO_THROW(check_cert_and_key(f.cert, f.key));
  auto expect_error = [](const std::function<void()>& fn, const std::string& want) {
    try {
      fn();
      ADD_FAILURE() << "no error; wanted \"" << want << "\"";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  expect_error([&] { write_self_signed({dir}); }, "already exists; pass --force");
  expect_error([&] { check_cert_and_key(f.cert, certs().a.key); },
               "the key in " + certs().a.key + " does not match the certificate in " + f.cert);
  expect_error([&] { tls_server_context(certs().a.cert, f.key); }, "does not match");
  expect_error([&] { tls_client_context(dir + "/missing.pem"); }, "no such file");
  expect_error([&] { tls_client_context(f.key); }, "holds no PEM certificate");
  expect_error([&] { tls_server_context(f.cert, f.cert); }, "holds no unencrypted PEM private key");
  expect_error([&] { write_self_signed({dir + "2", {"bad,name"}}); }, "not a host name or IP address");
  expect_error([&] { write_self_signed({dir + "3", {"localhost"}, 0}); }, "--days 0");
  // --force replaces both with a new key.
  const std::string old_key = [&] {
    std::ifstream in(f.key);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  SelfSignedRequest again{dir};
  again.force = true;
  write_self_signed(again);
  std::ifstream in(f.key);
  EXPECT_NE(std::string(std::istreambuf_iterator<char>(in), {}), old_key);
  EXPECT_NO_THROW(check_cert_and_key(f.cert, f.key));
}

}  // namespace
}  // namespace zeroth::tcp
