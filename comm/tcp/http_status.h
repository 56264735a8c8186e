// The TCP coordinator's read-only status page over HTTP (Boost.Beast).
//
// HttpStatusServer runs on the coordinator's own io_context (one thread, the
// event loop) and never blocks it: every read and write is asynchronous and
// bounded in size and time. It serves
//   GET /             one self-contained HTML page (inline CSS and JS, no
//                     external resources) that fetches /status.json every
//                     second and renders it, the loss curve as inline SVG;
//   GET /status.json  the string the status provider returns, as is;
//   anything else     404 (unknown path), 405 (any method but GET),
//                     400 (malformed request), 431 (header over the cap),
//                     413 (a request with a body), 500 (the provider threw).
// Each response closes its connection (no keep-alive). A client that does not
// finish its request within the read timeout is dropped; connections beyond
// the cap are closed as soon as they are accepted.
//
// The JSON the page expects from the provider (the coordinator defines it;
// missing fields show as "—", unknown ones are ignored):
//   run                                string   the run's name
//   step                               int      steps committed so far
//   steps                              int      the run's target step count
//   epoch                              int      membership epoch
//   members                            array of objects, one per member:
//       id                             int
//       name                           string
//       address                        string   "host:port"
//       state                          string   e.g. "active", "joining", "leaving", "lost"
//       last_seen_ms                   number   ms since the coordinator last heard from it
//       steps_contributed              int
//   min_workers, max_workers           int
//   steps_per_second                   number
//   loss                               number or null (no loss measured yet)
//   bytes_per_member_per_step          number   bytes on the wire, all framing included
//   payload_bytes_per_member_per_step  number   the records alone
//   rejections                         object   reason -> count, e.g. stale_epoch,
//                                               late, oversize, malformed,
//                                               unknown_member, hash_mismatch
//   loss_curve                         array of [step, loss] pairs, step ascending
//
// The page's rendered values carry stable element ids (for tests and
// scripts): run, step, steps, epoch, members-count, min-workers, max-workers,
// steps-per-second, loss, bytes-per-member-per-step,
// payload-bytes-per-member-per-step, overhead, rejections-total, members
// (tbody; rows carry data-member-id), rejections (tbody; rows carry
// data-reason), loss-curve (the svg), loss-curve-path (its path, created by the
// script once there is a point to draw), connection ("live" or the last error),
// updated (time of the last successful fetch).
//
// Threads: construct it, and destroy it, on the loop's thread or while the
// loop is not running; the provider is only ever called on the loop's thread.
// stop() may be called from any thread.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace zeroth {

struct HttpStatusOptions {
  std::size_t max_connections = 16;   // open connections at once; extra ones are closed
  std::uint32_t max_header_bytes = 8192;  // request line + headers; no body is accepted
  std::chrono::milliseconds read_timeout{5000};   // to receive a whole request
  std::chrono::milliseconds write_timeout{5000};  // to send a whole response
};

class HttpStatusServer {
 public:
  // Listens on `endpoint` at once (port 0 picks a free port; the caller
  // chooses the address, loopback for a local-only page) and accepts once the
  // loop runs. Throws zeroth::Error naming the endpoint if it cannot listen.
  HttpStatusServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
                   std::function<std::string()> status_json, HttpStatusOptions options = {});
  ~HttpStatusServer();  // stop()
  HttpStatusServer(const HttpStatusServer&) = delete;
  HttpStatusServer& operator=(const HttpStatusServer&) = delete;

  // The port listened on (the one picked where port 0 was asked).
  uint16_t port() const { return port_; }
  boost::asio::ip::tcp::endpoint endpoint() const { return endpoint_; }

  // Closes the listening socket and every open connection, so that the
  // server leaves no work on the loop. Immediate on the loop's thread or when
  // the loop has stopped; from another thread, it is posted to the loop.
  void stop();

  // Connections open now. Call on the loop's thread.
  std::size_t open_connections() const;

  // The page GET / serves.
  static const std::string& page_html();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  boost::asio::ip::tcp::endpoint endpoint_;
  uint16_t port_ = 0;
};

}  // namespace zeroth
