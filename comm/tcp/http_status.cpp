// HttpStatusServer (comm/tcp/http_status.h): one Session per accepted
// connection reads one request through a size-capped parser under a timeout,
// writes one response, half-closes, and drains what the client still sends
// (briefly, bounded) so the response is not lost to a reset. Everything runs
// as completion handlers on the caller's io_context; nothing blocks.
#include "comm/tcp/http_status.h"

#include <array>
#include <exception>
#include <string_view>
#include <unordered_set>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/error.h"

namespace zeroth {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session;

// After the response: how long, and how many bytes, we keep reading (and
// discarding) before closing, so the peer sees the response and then EOF.
constexpr auto kLingerTime = std::chrono::milliseconds(1000);
constexpr std::size_t kLingerBytes = 64 * 1024;

const char* const kHtmlType = "text/html; charset=utf-8";
const char* const kJsonType = "application/json";
const char* const kTextType = "text/plain; charset=utf-8";

}  // namespace

struct HttpStatusServer::Impl : std::enable_shared_from_this<HttpStatusServer::Impl> {
  Impl(asio::io_context& io_, std::function<std::string()> provider_, HttpStatusOptions options_)
      : io(io_), acceptor(io_), retry(io_), provider(std::move(provider_)), options(options_) {}

  void listen(const tcp::endpoint& endpoint);
  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void stop_now();

  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // paces accept after a failure (e.g. out of descriptors)
  std::function<std::string()> provider;
  HttpStatusOptions options;
  std::unordered_set<Session*> sessions;  // open connections; loop thread only
  bool stopped = false;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Server = HttpStatusServer::Impl;

  Session(tcp::socket socket, std::shared_ptr<Server> server)
      : stream_(std::move(socket)), buffer_(server->options.max_header_bytes), server_(std::move(server)) {
    server_->sessions.insert(this);
  }
  ~Session() { server_->sessions.erase(this); }

  void start() {
    parser_.header_limit(server_->options.max_header_bytes);
    parser_.body_limit(0);
    stream_.expires_after(server_->options.read_timeout);
    http::async_read(stream_, buffer_, parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  // Pending operations complete with an error and the session ends (stop()
  // calls this too).
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void on_read(beast::error_code ec, std::size_t) {
    if (server_->stopped) return;
    if (!ec) return respond(route(parser_.get()));
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
      return respond(error(http::status::request_header_fields_too_large, "request header too large\n"));
    if (ec == http::error::body_limit || ec == http::error::unexpected_body)
      return respond(error(http::status::payload_too_large, "no request body is accepted\n"));
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message)
      return respond(error(http::status::bad_request, "malformed request\n"));
    // End of stream, a timeout (tcp_stream has closed the socket), a reset,
    // or cancellation: nothing to answer.
    close();
  }

  http::response<http::string_body> route(const http::request<http::empty_body>& req) {
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get) {
      auto res = error(http::status::method_not_allowed, "only GET is served\n");
      res.set(http::field::allow, "GET");
      return res;
    }
    if (target == "/" || target == "/index.html") return ok(HttpStatusServer::page_html(), kHtmlType);
    if (target == "/status.json") {
      try {
        return ok(server_->provider(), kJsonType);
      } catch (const std::exception& e) {
        return error(http::status::internal_server_error, std::string("status unavailable: ") + e.what() + "\n");
      } catch (...) {
        return error(http::status::internal_server_error, "status unavailable\n");
      }
    }
    return error(http::status::not_found, "not found\n");
  }

  static http::response<http::string_body> ok(std::string body, const char* type) {
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, type);
    res.body() = std::move(body);
    return res;
  }
  static http::response<http::string_body> error(http::status status, std::string body) {
    http::response<http::string_body> res{status, 11};
    res.set(http::field::content_type, kTextType);
    res.body() = std::move(body);
    return res;
  }

  void respond(http::response<http::string_body> res) {
    res_ = std::move(res);
    res_.set(http::field::server, "zeroth");
    res_.set(http::field::cache_control, "no-store");
    res_.set("X-Content-Type-Options", "nosniff");
    // The page may talk to this server only, and load nothing from elsewhere.
    res_.set("Content-Security-Policy",
             "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    res_.keep_alive(false);
    res_.prepare_payload();
    stream_.expires_after(server_->options.write_timeout);
    http::async_write(stream_, res_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec || server_->stopped) return close();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->server_->stopped || self->drained_ > kLingerBytes) return self->close();
      self->drain();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;  // one request per connection
  http::response<http::string_body> res_;
  std::array<char, 2048> scratch_{};
  std::size_t drained_ = 0;
  std::shared_ptr<Server> server_;
};

}  // namespace

void HttpStatusServer::Impl::listen(const tcp::endpoint& endpoint) {
  beast::error_code ec;
  auto where = [&] { return endpoint.address().to_string() + ":" + std::to_string(endpoint.port()); };
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("status page: cannot listen on {}: {}", where(), ec.message());
}

void HttpStatusServer::Impl::accept() {
  if (stopped) return;
  acceptor.async_accept(beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void HttpStatusServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopped || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors or a connection aborted before accept: try again
    // shortly rather than spinning on the loop.
    retry.expires_after(std::chrono::milliseconds(100));
    retry.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec) self->accept();
    });
    return;
  }
  if (sessions.size() >= options.max_connections) {
    beast::error_code ignored;
    socket.close(ignored);
  } else {
    std::make_shared<Session>(std::move(socket), shared_from_this())->start();
  }
  accept();
}

void HttpStatusServer::Impl::stop_now() {
  if (stopped) return;
  stopped = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  retry.cancel();
  for (Session* s : sessions) s->close();
}

HttpStatusServer::HttpStatusServer(asio::io_context& io, const tcp::endpoint& endpoint,
                                   std::function<std::string()> status_json, HttpStatusOptions options) {
  ZEROTH_CHECK(status_json, "status page: no status provider given");
  ZEROTH_CHECK(options.max_connections > 0, "status page: max_connections must be at least 1");
  impl_ = std::make_shared<Impl>(io, std::move(status_json), options);
  impl_->listen(endpoint);
  endpoint_ = impl_->acceptor.local_endpoint();
  port_ = endpoint_.port();
  impl_->accept();
}

// By the contract in the header we are on the loop's thread or the loop is
// not running: stop at once, so the port is free when this returns.
HttpStatusServer::~HttpStatusServer() {
  if (impl_) impl_->stop_now();
}

void HttpStatusServer::stop() {
  if (!impl_) return;
  if (impl_->io.get_executor().running_in_this_thread() || impl_->io.stopped()) {
    impl_->stop_now();
  } else {
    asio::post(impl_->io, [impl = impl_] { impl->stop_now(); });
  }
}

std::size_t HttpStatusServer::open_connections() const { return impl_->sessions.size(); }

}  // namespace zeroth
