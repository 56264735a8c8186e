// One framed TCP connection (comm/tcp/frame.h) on a Boost.Asio io_context:
// reads header-then-body forever, checking every header (magic, version, type,
// cap, sequence) before allocating its body; writes through a queue. All its
// functions run on the io_context's thread (post to it from elsewhere).
#pragma once
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

  explicit Connection(tcp::socket socket);
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
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }
  size_t queued_bytes() const { return queued_; }

 private:
  void read_header();
  void read_body(const FrameHeader& h);
  void write_next();
  void finish(const std::string& why, const FrameError* bad);

  tcp::socket socket_;
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
