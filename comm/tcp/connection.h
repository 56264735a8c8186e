// One framed TCP connection (comm/tcp/frame.h) on a Boost.Asio io_context:
// reads header-then-body forever, checking every header (magic, version, type,
// cap, sequence) before allocating its body; writes through a queue. All its
// functions run on the io_context's thread (post to it from elsewhere).
// The stream is a plain socket or TLS over it (comm/tcp/tls.h): with TLS,
// start() runs the handshake first, and frames sent before it ends wait in the
// queue; the framing, tags and sequence numbers are the same either way.
#pragma once
#include <cstdint>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/tcp/auth.h"
#include "comm/tcp/frame.h"
#include "comm/tcp/tls.h"

namespace zeroth::tcp {

namespace asio = boost::asio;
using asio::ip::tcp;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using OnFrame = std::function<void(const FrameHeader&, std::vector<uint8_t> body)>;
  // Called once when the connection ends: why, and the frame error's kind if a
  // bad frame ended it (reads stop at the first bad frame: a stream that lost
  // its framing cannot be trusted past it).
  using OnClose = std::function<void(const std::string& why, const FrameError* bad_frame)>;

  enum class TlsRole { Client, Server };
  explicit Connection(tcp::socket socket);
  // TLS over `socket`. A client checks the peer's certificate for `host`
  // (tls_expect_host) when it is not empty. A failed handshake (or none
  // before close) ends the connection with a FrameError of kind Tls.
  Connection(tcp::socket socket, std::shared_ptr<ssl::context> tls, TlsRole role, const std::string& host = "");
  void start(OnFrame on_frame, OnClose on_close);
  void send(FrameType type, uint64_t epoch, uint64_t step, std::span<const uint8_t> body);
  void send(FrameType type, uint64_t epoch, uint64_t step, const std::vector<uint8_t>& body) {
    send(type, epoch, step, std::span<const uint8_t>(body));
  }
  // From now on every frame sent is tagged with keys.send, and every frame
  // received must carry a valid tag under keys.recv (else the connection ends
  // with a FrameError: "bad tag"). Frames already queued keep their form.
  void set_keys(const SessionKeys& keys) { keys_ = keys; }
  bool authenticated() const { return keys_.has_value(); }
  // Bodies longer than this end the connection as oversize, whatever their
  // type's cap (the coordinator's limit before authentication).
  void limit_body(uint32_t n) { body_limit_ = n; }
  // Closes after the queued frames are written (or at once when `flush` is false).
  void close(const std::string& why, bool flush = true);
  bool open() const { return open_; }
  const std::string& remote() const { return remote_; }
  bool tls() const { return tls_ != nullptr; }
  // The connection ended because the two ends disagree on TLS (one uses it,
  // the other not) or the peer's certificate was not accepted: retrying
  // cannot help until someone changes a setting.
  bool tls_mismatch() const { return tls_mismatch_; }
  // Frame bytes (headers, bodies, tags), and bytes on the socket: with TLS
  // these add its records' overhead and the handshake.
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }
  uint64_t wire_bytes_in() const;
  uint64_t wire_bytes_out() const;
  size_t queued_bytes() const { return queued_; }

 private:
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  // Runs f on the stream frames travel on: the TLS stream or the socket.
  template <class F>
  void on_stream(F&& f) {
    if (tls_) f(*tls_);
    else f(*plain_);
  }
  std::string handshake_error(const boost::system::error_code& ec);
  void refuse_plaintext(const std::shared_ptr<FrameError>& e);
  void read_header();
  void read_body(const FrameHeader& h);
  void write_next();
  void finish(const std::string& why, const FrameError* bad);

  std::optional<tcp::socket> plain_;
  std::shared_ptr<ssl::context> tls_context_;  // outlives tls_
  std::unique_ptr<TlsStream> tls_;
  TlsRole role_ = TlsRole::Client;
  bool ready_ = false;  // started, and past the TLS handshake if any
  bool tls_mismatch_ = false;
  std::string remote_;
  OnFrame on_frame_;
  OnClose on_close_;
  std::optional<SessionKeys> keys_;
  uint32_t body_limit_ = UINT32_MAX;
  std::array<uint8_t, kFrameHeaderBytes> header_{};
  std::vector<uint8_t> body_;
  std::deque<std::vector<uint8_t>> out_;
  size_t queued_ = 0;
  bool writing_ = false, open_ = true, closing_ = false, closed_ = false;
  uint64_t seq_in_ = 0, seq_out_ = 0, bytes_in_ = 0, bytes_out_ = 0;
};

}  // namespace zeroth::tcp
