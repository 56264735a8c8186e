#include "comm/tcp/connection.h"

#include <fmt/format.h>

namespace zeroth::tcp {

Connection::Connection(tcp::socket socket) : socket_(std::move(socket)) {
  boost::system::error_code ec;
  const auto ep = socket_.remote_endpoint(ec);
  remote_ = ec ? "?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  socket_.set_option(tcp::no_delay(true), ec);
}

void Connection::start(OnFrame on_frame, OnClose on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  read_header();
}

void Connection::read_header() {
  asio::async_read(socket_, asio::buffer(header_),
                   [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                     if (ec) return self->finish(ec == asio::error::eof ? "closed by peer" : ec.message(), nullptr);
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
}

void Connection::read_body(const FrameHeader& h) {
  const bool tagged = h.flags & kFlagTagged;
  body_.assign(h.length + (tagged ? kTagBytes : 0), 0);  // at most max_body_bytes(h.type) + a tag, checked above
  asio::async_read(socket_, asio::buffer(body_), [self = shared_from_this(), h, tagged](boost::system::error_code ec, size_t n) {
    if (ec) return self->finish(ec == asio::error::eof ? "closed by peer mid-frame" : ec.message(), nullptr);
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
}

void Connection::send(FrameType type, uint64_t epoch, uint64_t step, std::span<const uint8_t> body) {
  if (!open_ || closing_) return;
  auto frame = encode_frame({type, uint32_t(body.size()), 0, epoch, step, ++seq_out_}, body,
                            keys_ ? &keys_->send : nullptr);
  queued_ += frame.size();
  out_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void Connection::write_next() {
  if (out_.empty()) {
    writing_ = false;
    if (closing_) finish("closed", nullptr);
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
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
}

void Connection::close(const std::string& why, bool flush) {
  if (!open_) return;
  if (flush && writing_) {
    closing_ = true;  // write_next() finishes once the queue drains
    return;
  }
  finish(why, nullptr);
}

void Connection::finish(const std::string& why, const FrameError* bad) {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  if (!writing_) out_.clear();  // else the write in flight still reads its buffer; its handler clears
  queued_ = 0;
  if (on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(why, bad);
  }
  on_frame_ = nullptr;
}

}  // namespace zeroth::tcp
