#include "comm/tcp/connection.h"

#include <cstdint>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace zeroth::tcp {
namespace {

// The first bytes of a TLS record (handshake, alert, ...: type 20..23, then
// version 3.x) where a frame header was expected: the peer speaks TLS.
bool looks_like_tls(const std::array<uint8_t, kFrameHeaderBytes>& h, size_t n) {
  return n >= 3 && h[0] >= 20 && h[0] <= 23 && h[1] == 3 && h[2] <= 4;
}

bool closed_by_peer(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

Connection::Connection(tcp::socket socket) : plain_(std::move(socket)) {
  boost::system::error_code ec;
  const auto ep = this->socket().remote_endpoint(ec);
  remote_ = ec ? "?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  this->socket().set_option(tcp::no_delay(true), ec);
}

Connection::Connection(tcp::socket socket, std::shared_ptr<ssl::context> tls, TlsRole role, const std::string& host)
    : Connection(std::move(socket)) {
  tls_context_ = std::move(tls);
  tls_ = std::make_unique<TlsStream>(std::move(*plain_), *tls_context_);
  plain_.reset();
  role_ = role;
  if (role == TlsRole::Client && !host.empty()) tls_expect_host(*tls_, host);
}

void Connection::start(OnFrame on_frame, OnClose on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  auto begin = [this] {
    ready_ = true;
    read_header();
    if (!writing_ && !out_.empty()) write_next();
  };
  if (!tls_) return begin();
  tls_->async_handshake(role_ == TlsRole::Server ? ssl::stream_base::server : ssl::stream_base::client,
                        [self = shared_from_this(), begin](boost::system::error_code ec) {
                          if (self->closed_) return;
                          if (ec) {
                            auto e = std::make_shared<FrameError>(FrameError::Kind::Tls, self->handshake_error(ec));
                            if (self->role_ == TlsRole::Server && self->tls_mismatch_) return self->refuse_plaintext(e);
                            return self->finish(e->what(), e.get());
                          }
                          begin();
                        });
}

std::string Connection::handshake_error(const boost::system::error_code& ec) {
  std::string why = ec.message();
  const long verify = SSL_get_verify_result(tls_->native_handle());
  if (role_ == TlsRole::Client && verify != X509_V_OK) {
    tls_mismatch_ = true;
    why = fmt::format("the coordinator's certificate was not accepted: {} (check --tls-ca and the host in --join)",
                      X509_verify_cert_error_string(verify));
  } else if (closed_by_peer(ec)) {
    why = "the peer closed the connection during the handshake (does it use TLS too?)";
  } else if (ec.category() == asio::error::get_ssl_category()) {
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
        reason == SSL_R_HTTP_REQUEST || reason == SSL_R_UNEXPECTED_RECORD) {
      tls_mismatch_ = true;
      why += " (the peer does not speak TLS: both ends must use TLS, or neither)";
    }
  }
  return fmt::format("TLS handshake with {} failed: {}", remote_, why);
}

// A plaintext peer on a TLS server would otherwise only see the connection
// close: one plaintext Refused frame tells it why, then the connection ends.
void Connection::refuse_plaintext(const std::shared_ptr<FrameError>& e) {
  const auto body = encode(TextMsg{"this coordinator requires TLS: connect with --tls --tls-ca FILE (the "
                                   "coordinator's certificate or its CA)"});
  auto frame = std::make_shared<std::vector<uint8_t>>(
      encode_frame({FrameType::Refused, uint32_t(body.size()), 0, 0, 0, 1}, body, nullptr));
  asio::async_write(socket(), asio::buffer(*frame), [self = shared_from_this(), frame, e](boost::system::error_code, size_t) {
    self->finish(e->what(), e.get());
  });
}

uint64_t Connection::wire_bytes_in() const {
  return tls_ ? BIO_number_read(SSL_get_rbio(tls_->native_handle())) : bytes_in_;
}
uint64_t Connection::wire_bytes_out() const {
  return tls_ ? BIO_number_written(SSL_get_wbio(tls_->native_handle())) : bytes_out_;
}

void Connection::read_header() {
  on_stream([&](auto& stream) {
    asio::async_read(stream, asio::buffer(header_), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
      const bool tls_peer = !self->tls_ && self->seq_in_ == 0 && looks_like_tls(self->header_, n);
      if (tls_peer) {
        self->tls_mismatch_ = true;
        const FrameError e(FrameError::Kind::Tls,
                           fmt::format("{} speaks TLS and this end does not: both ends must use TLS, "
                                       "or neither", self->remote_));
        return self->finish(e.what(), &e);
      }
      if (ec) return self->finish(closed_by_peer(ec) ? "closed by peer" : ec.message(), nullptr);
      self->bytes_in_ += n;
      FrameHeader h;
      try {
        h = decode_frame_header(self->header_);
        if (h.length > self->body_limit_)
          throw FrameError(FrameError::Kind::Oversize,
                           fmt::format("{} frame of {} bytes before authentication (at most {})",
                                       frame_type_name(h.type), h.length, self->body_limit_));
        if ((h.flags & kFlagTagged) && !self->keys_)
          throw FrameError(FrameError::Kind::Malformed, "a tagged frame before any session key");
        if (!(h.flags & kFlagTagged) && self->keys_)
          throw FrameError(FrameError::Kind::Malformed,
                           fmt::format("an untagged {} frame on an authenticated connection",
                                       frame_type_name(h.type)));
        if (h.sequence != self->seq_in_ + 1)
          throw FrameError(FrameError::Kind::Malformed,
                           fmt::format("{} frame has sequence {}, expected {} (replayed or reordered)",
                                       frame_type_name(h.type), h.sequence, self->seq_in_ + 1));
      } catch (const FrameError& e) {
        return self->finish(e.what(), &e);
      }
      self->seq_in_ = h.sequence;
      self->read_body(h);
    });
  });
}

void Connection::read_body(const FrameHeader& h) {
  const bool tagged = h.flags & kFlagTagged;
  body_.assign(h.length + (tagged ? kTagBytes : 0), 0);  // at most max_body_bytes(h.type) + a tag, checked above
  on_stream([&](auto& stream) {
    asio::async_read(stream, asio::buffer(body_), [self = shared_from_this(), h, tagged](boost::system::error_code ec, size_t n) {
      if (ec) return self->finish(closed_by_peer(ec) ? "closed by peer mid-frame" : ec.message(), nullptr);
      self->bytes_in_ += n;
      if (!self->open_) return;
      std::vector<uint8_t> body = std::move(self->body_);
      self->body_.clear();
      if (tagged) {
        const std::span<const uint8_t> all(body);
        try {
          verify_tag(self->header_, all.first(h.length), all.subspan(h.length), self->keys_->recv, h.type, h.sequence);
        } catch (const FrameError& e) {
          return self->finish(e.what(), &e);
        }
        body.resize(h.length);
      }
      try {
        self->on_frame_(h, std::move(body));
      } catch (const FrameError& e) {
        return self->finish(e.what(), &e);
      }
      if (self->open_) self->read_header();
    });
  });
}

void Connection::send(FrameType type, uint64_t epoch, uint64_t step, std::span<const uint8_t> body) {
  if (!open_ || closing_) return;
  auto frame = encode_frame({type, uint32_t(body.size()), 0, epoch, step, ++seq_out_}, body,
                            keys_ ? &keys_->send : nullptr);
  queued_ += frame.size();
  out_.push_back(std::move(frame));
  if (ready_ && !writing_) write_next();
}

void Connection::write_next() {
  if (out_.empty()) {
    writing_ = false;
    if (closing_) finish("closed", nullptr);
    return;
  }
  writing_ = true;
  on_stream([&](auto& stream) {
    asio::async_write(stream, asio::buffer(out_.front()), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
      self->writing_ = false;
      if (self->closed_) {  // finished while this write was in flight: its buffer could go only now
        self->out_.clear();
        return;
      }
      if (ec) return self->finish(ec.message(), nullptr);
      self->bytes_out_ += n;
      self->queued_ -= self->out_.front().size();
      self->out_.pop_front();
      self->write_next();
    });
  });
}

void Connection::close(const std::string& why, bool flush) {
  if (!open_) return;
  if (flush && (writing_ || (!ready_ && !out_.empty()))) {  // (before the TLS handshake: once it is done)
    closing_ = true;  // write_next() finishes once the queue drains
    return;
  }
  finish(why, nullptr);
}

void Connection::finish(const std::string& why, const FrameError* bad) {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  // Closed before its TLS handshake ended (the coordinator's time limit before
  // authentication, or the run's end): a TLS failure too.
  std::optional<FrameError> no_handshake;
  if (tls_ && !ready_ && !bad) {
    no_handshake.emplace(FrameError::Kind::Tls, fmt::format("no TLS handshake from {}: {}", remote_, why));
    bad = &*no_handshake;
  }
  // No TLS close_notify: the peer reads the end of the socket as the end (the
  // frames' own framing, not TLS's, says where a message ends).
  boost::system::error_code ec;
  socket().shutdown(tcp::socket::shutdown_both, ec);
  socket().close(ec);
  if (!writing_) out_.clear();  // else the write in flight still reads its buffer; its handler clears
  queued_ = 0;
  if (on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(bad ? bad->what() : why, bad);
  }
  on_frame_ = nullptr;
}

}  // namespace zeroth::tcp
