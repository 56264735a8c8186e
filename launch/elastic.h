// Shared pieces of `zeroth coordinator` and `zeroth worker`: parsing
// HOST:PORT, TLS and credentials. The replica each keeps of θ is optim/replica.h.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "comm/tcp/auth.h"
#include "comm/tcp/connection.h"
#include "launch/trainer.h"

namespace zeroth::cli {

namespace asio = boost::asio;
using Endpoint = asio::ip::tcp::endpoint;
using Socket = asio::ip::tcp::socket;
// The wire protocol's names, for the coordinator, worker and status commands.
using tcp::CatchUpMsg;
using tcp::CatchUpPart;
using tcp::CommitMsg;
using tcp::Connection;
using tcp::FrameError;
using tcp::FrameHeader;
using tcp::FrameType;
using tcp::JoinMsg;
using tcp::ReadyMsg;
using tcp::ResultMsg;
using tcp::StepMsg;
using tcp::TextMsg;
using tcp::WelcomeMsg;
using tcp::decode_catch_up;
using tcp::decode_commit;
using tcp::decode_step;
using tcp::decode_text;
using tcp::decode_welcome;
using tcp::encode;
using tcp::frame_type_name;
using tcp::ChallengeMsg;
using tcp::HelloOkMsg;
using tcp::decode_challenge;
using tcp::decode_hello_ok;

// What a worker (or `zeroth status`) proves itself with: a member token
// (--token TOKEN or a file holding it) or the run secret (--secret FILE).
struct Credential {
  tcp::CredentialKind kind = tcp::CredentialKind::Token;
  std::string name;
  uint64_t expiry = 0;
  tcp::Key key{};
};
std::optional<Credential> load_credential(const std::string& token, const std::string& secret_file);
// The answer to a coordinator's Challenge, and checking its HelloOk: the
// worker's half of the handshake. Returns the Hello body; fills `nonce_w`.
std::vector<uint8_t> hello_for(const Credential& cred, const tcp::ChallengeMsg& ch, tcp::Nonce& nonce_w);

// "HOST:PORT" (HOST may be a name, an IPv4 address or [IPv6]); `what` names the
// flag in errors.
Endpoint parse_endpoint(const std::string& text, const char* what, bool resolve = true);
// HOST of "HOST:PORT" or "[IPV6]:PORT": what the coordinator's certificate must name.
std::string host_of(const std::string& text);

// --tls and --tls-ca of `zeroth worker` and `zeroth status`: the client's TLS
// context (the coordinator's certificate must verify against ca_file), or
// none without --tls. There is no unverified mode.
std::shared_ptr<tcp::ssl::context> client_tls(bool tls, const std::string& ca_file);
// A connection to the coordinator over `socket`: TLS checking `host` when `tls` is set.
std::shared_ptr<Connection> connect_to_coordinator(Socket socket, const std::shared_ptr<tcp::ssl::context>& tls,
                                                   const std::string& host);

}  // namespace zeroth::cli
