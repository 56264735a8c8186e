// HttpStatusServer (comm/tcp/http_status.h), the coordinator's status page:
//   - GET / is the self-contained HTML page with its stable ids, GET
//     /status.json the provider's string as application/json, read anew on
//     every request;
//   - 404 for other paths, 405 (Allow: GET) for other methods, 400 for a
//     malformed request, 413 for a body, 431 for a header over the cap, 500
//     when the provider throws; the server answers normally afterwards;
//   - a client that never finishes its request neither delays others nor
//     keeps its connection past the read timeout; connections over the cap
//     are closed at once;
//   - stop() leaves no work, so the loop's run() returns;
//   - in headless Chromium, the page's script renders the values (which the
//     static markup does not hold) and the loss curve as an SVG path, and
//     follows the provider as it changes. Skipped where `chromium` is absent.
// The server's loop runs on its own thread; every client here has a time
// bound, and a loop that does not end after stop() ends the binary instead of
// hanging CI.
#include <cstdint>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "comm/tcp/http_status.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

tcp::endpoint loopback(uint16_t port) { return tcp::endpoint(asio::ip::address_v4::loopback(), port); }

// The status a coordinator might report; the tests change it while serving.
class FakeStatus {
 public:
  FakeStatus() {
    json_ = {
        {"run", "stories-zo"},
        {"step", 1},
        {"steps", 2000},
        {"epoch", 3},
        {"members",
         {{{"id", 0}, {"name", "worker-a"}, {"address", "127.0.0.1:7001"}, {"state", "active"},
           {"last_seen_ms", 120}, {"steps_contributed", 1}},
          {{"id", 1}, {"name", "<b>bold</b>"}, {"address", "127.0.0.1:7002"}, {"state", "joining"},
           {"last_seen_ms", 2500}, {"steps_contributed", 0}}}},
        {"min_workers", 2},
        {"max_workers", 8},
        {"steps_per_second", 3.5},
        {"loss", nullptr},
        {"bytes_per_member_per_step", 60},
        {"payload_bytes_per_member_per_step", 32},
        {"rejections", {{"stale_epoch", 2}, {"late", 0}, {"oversize", 1}, {"malformed", 0},
                        {"unknown_member", 0}, {"hash_mismatch", 0}}},
        {"loss_curve", nlohmann::json::array()},
    };
  }
  void update(const std::function<void(nlohmann::json&)>& change) {
    std::lock_guard<std::mutex> lock(mutex_);
    change(json_);
  }
  // The provider: called on the server's loop thread.
  std::string operator()() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++calls_;
    if (on_call_) on_call_(json_, calls_);
    return json_.dump();
  }
  // Runs on every call, before the dump (values that move by themselves).
  void on_call(std::function<void(nlohmann::json&, int)> f) {
    std::lock_guard<std::mutex> lock(mutex_);
    on_call_ = std::move(f);
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  std::mutex mutex_;
  nlohmann::json json_;
  int calls_ = 0;
  std::function<void(nlohmann::json&, int)> on_call_;
};

// A server on 127.0.0.1, port 0, whose io_context runs on its own thread.
class Served {
 public:
  explicit Served(std::function<std::string()> provider, HttpStatusOptions options = {})
      : server_(std::make_unique<HttpStatusServer>(io_, loopback(0), std::move(provider), options)) {
    auto done = std::make_shared<std::promise<void>>();
    finished_ = done->get_future();
    thread_ = std::thread([this, done] {
      io_.run();
      done->set_value();
    });
  }
  ~Served() { stop_and_join(); }

  uint16_t port() const { return server_->port(); }
  HttpStatusServer& server() { return *server_; }

  // stop() from this (non-loop) thread; run() must return within the bound.
  void stop_and_join() {
    if (!thread_.joinable()) return;
    server_->stop();
    if (finished_.wait_for(10s) != std::future_status::ready) {
      std::fprintf(stderr, "FATAL: the io_context still runs 10 s after HttpStatusServer::stop()\n");
      std::_Exit(1);
    }
    thread_.join();
  }

  // Runs f on the loop's thread and returns its result.
  template <typename F>
  auto on_loop(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, std::move(task));
    if (result.wait_for(10s) != std::future_status::ready) {
      std::fprintf(stderr, "FATAL: the server's loop did not run a posted task within 10 s\n");
      std::_Exit(1);
    }
    return result.get();
  }

  // Waits (bounded) until the server has `n` connections open.
  bool wait_open_connections(std::size_t n) {
    for (auto end = Clock::now() + 10s; Clock::now() < end; std::this_thread::sleep_for(10ms))
      if (on_loop([this] { return server_->open_connections(); }) == n) return true;
    return false;
  }

 private:
  asio::io_context io_;
  std::unique_ptr<HttpStatusServer> server_;
  std::thread thread_;
  std::future<void> finished_;
};

struct Reply {
  beast::error_code ec;  // of the connect, the write or the read
  unsigned status = 0;
  std::string content_type, allow, connection, body;
};

// A client whose every operation ends within `limit` (tcp_stream's timer).
class Client {
 public:
  explicit Client(std::chrono::milliseconds limit = 10s) : stream_(io_), limit_(limit) {}

  beast::error_code connect(uint16_t port) {
    beast::error_code out;
    stream_.expires_after(limit_);
    stream_.async_connect(loopback(port), [&](beast::error_code ec) { out = ec; });
    run();
    return out;
  }
  beast::error_code send(const std::string& data) {
    beast::error_code out;
    stream_.expires_after(limit_);
    asio::async_write(stream_, asio::buffer(data), [&](beast::error_code ec, std::size_t) { out = ec; });
    run();
    return out;
  }
  Reply receive() {
    Reply r;
    http::response<http::string_body> res;
    stream_.expires_after(limit_);
    http::async_read(stream_, buffer_, res, [&](beast::error_code ec, std::size_t) { r.ec = ec; });
    run();
    if (r.ec) return r;
    r.status = res.result_int();
    r.content_type = std::string(res[http::field::content_type]);
    r.allow = std::string(res[http::field::allow]);
    r.connection = std::string(res[http::field::connection]);
    r.body = std::move(res.body());
    return r;
  }
  // Reads until the connection ends; returns what came and why it ended
  // (eof or a reset when the server closed it, timeout when it did not).
  std::pair<std::string, beast::error_code> read_until_closed() {
    std::string got;
    beast::error_code end;
    std::array<char, 4096> chunk{};
    std::function<void()> next = [&] {
      stream_.async_read_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
        got.append(chunk.data(), n);
        if (ec) {
          end = ec;
          return;
        }
        next();
      });
    };
    stream_.expires_after(limit_);
    next();
    run();
    return {got, end};
  }

 private:
  void run() {
    io_.restart();
    io_.run();
  }
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::chrono::milliseconds limit_;
};

std::string request(const std::string& method, const std::string& target, const std::string& extra = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

Reply fetch(uint16_t port, const std::string& raw) {
  Client c;
  Reply r;
  if ((r.ec = c.connect(port))) return r;
  if ((r.ec = c.send(raw))) return r;
  return c.receive();
}

Reply get(uint16_t port, const std::string& target) { return fetch(port, request("GET", target)); }

bool closed_by_server(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe;
}

TEST(HttpStatus, ServesPageAndStatusJson) {
  auto status = std::make_shared<FakeStatus>();
  Served s([status] { return (*status)(); });
  ASSERT_NE(s.port(), 0);

  Reply page = get(s.port(), "/");
  ASSERT_FALSE(page.ec) << page.ec.message();
  EXPECT_EQ(page.status, 200u);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(page.connection, "close");
  EXPECT_EQ(page.body, HttpStatusServer::page_html());
  for (const char* id : {"run", "step", "steps", "epoch", "members-count", "min-workers", "max-workers",
                         "steps-per-second", "loss", "bytes-per-member-per-step",
                         "payload-bytes-per-member-per-step", "overhead", "rejections-total", "members",
                         "rejections", "loss-curve", "connection", "updated"})
    EXPECT_NE(page.body.find(std::string("id=\"") + id + "\""), std::string::npos) << "no element id=" << id;
  EXPECT_NE(page.body.find("<svg"), std::string::npos);
  EXPECT_NE(page.body.find("status.json"), std::string::npos);
  // Self-contained: nothing loaded from anywhere.
  for (const char* external : {"<link", "src=", "@import", "url("})
    EXPECT_EQ(page.body.find(external), std::string::npos) << "page refers to an external resource: " << external;

  Reply json = get(s.port(), "/status.json");
  ASSERT_FALSE(json.ec) << json.ec.message();
  EXPECT_EQ(json.status, 200u);
  EXPECT_EQ(json.content_type, "application/json");
  auto parsed = nlohmann::json::parse(json.body);
  EXPECT_EQ(parsed["run"], "stories-zo");
  EXPECT_EQ(parsed["members"].size(), 2u);
  EXPECT_EQ(status->calls(), 1);

  // A query string does not change the route; /index.html is the page too.
  EXPECT_EQ(get(s.port(), "/status.json?t=5").status, 200u);
  EXPECT_EQ(get(s.port(), "/index.html").status, 200u);
}

TEST(HttpStatus, StatusFollowsTheProvider) {
  auto status = std::make_shared<FakeStatus>();
  Served s([status] { return (*status)(); });
  for (int step : {1, 7, 1999}) {
    status->update([&](nlohmann::json& j) {
      j["step"] = step;
      j["loss"] = 1.0 / step;
    });
    Reply r = get(s.port(), "/status.json");
    ASSERT_EQ(r.status, 200u) << r.ec.message();
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["step"], step);
    EXPECT_DOUBLE_EQ(j["loss"].get<double>(), 1.0 / step);
  }
}

TEST(HttpStatus, UnknownPathIs404OtherMethodsAre405) {
  auto status = std::make_shared<FakeStatus>();
  Served s([status] { return (*status)(); });
  for (const char* path : {"/nope", "/status", "/status.json/x", "/../etc/passwd", "//"}) {
    Reply r = get(s.port(), path);
    EXPECT_EQ(r.status, 404u) << path << ": " << r.ec.message();
  }
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
    Reply r = fetch(s.port(), request(method, "/status.json", "Content-Length: 0\r\n"));
    EXPECT_EQ(r.status, 405u) << method << ": " << r.ec.message();
    EXPECT_EQ(r.allow, "GET") << method;
  }
  EXPECT_EQ(status->calls(), 0) << "the provider ran for a refused request";
  EXPECT_EQ(get(s.port(), "/status.json").status, 200u);
}

TEST(HttpStatus, MalformedRequestsAndBodiesAreRefused) {
  auto status = std::make_shared<FakeStatus>();
  Served s([status] { return (*status)(); });
  Reply garbage = fetch(s.port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(garbage.status, 400u) << garbage.ec.message();
  Reply body = fetch(s.port(), request("GET", "/status.json", "Content-Length: 5\r\n") + "hello");
  EXPECT_EQ(body.status, 413u) << body.ec.message();
  Reply chunked = fetch(s.port(), request("GET", "/", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 413u) << chunked.ec.message();
  EXPECT_EQ(status->calls(), 0);
  EXPECT_EQ(get(s.port(), "/status.json").status, 200u);
}

TEST(HttpStatus, OversizeRequestIsRefusedAndTheServerStillAnswers) {
  auto status = std::make_shared<FakeStatus>();
  Served s([status] { return (*status)(); });
  // 16 KiB of header against the 8 KiB cap; and a request line alone over it.
  Reply big_header = fetch(s.port(), request("GET", "/status.json", "X-Filler: " + std::string(16 * 1024, 'a') + "\r\n"));
  EXPECT_EQ(big_header.status, 431u) << big_header.ec.message();
  Reply big_target = fetch(s.port(), request("GET", "/" + std::string(12 * 1024, 'b')));
  EXPECT_EQ(big_target.status, 431u) << big_target.ec.message();
  // Far over the cap (1 MiB): refused without reading it all, never a hang.
  Reply huge = fetch(s.port(), request("GET", "/", "X-Filler: " + std::string(1 << 20, 'c') + "\r\n"));
  EXPECT_TRUE(huge.status == 431u || closed_by_server(huge.ec)) << huge.status << " " << huge.ec.message();
  EXPECT_EQ(status->calls(), 0);

  Reply after = get(s.port(), "/status.json");
  EXPECT_EQ(after.status, 200u) << after.ec.message();
  EXPECT_TRUE(s.wait_open_connections(0));
}

TEST(HttpStatus, ProviderErrorIs500) {
  bool broken = true;
  std::mutex m;
  Served s([&] {
    std::lock_guard<std::mutex> lock(m);
    if (broken) throw Error("coordinator not ready");
    return std::string("{}");
  });
  Reply r = get(s.port(), "/status.json");
  EXPECT_EQ(r.status, 500u) << r.ec.message();
  EXPECT_NE(r.body.find("coordinator not ready"), std::string::npos) << r.body;
  {
    std::lock_guard<std::mutex> lock(m);
    broken = false;
  }
  Reply ok = get(s.port(), "/status.json");
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, "{}");
}

TEST(HttpStatus, SlowClientDoesNotBlockOthersAndIsDropped) {
  auto status = std::make_shared<FakeStatus>();
  HttpStatusOptions options;
  options.read_timeout = 2s;
  Served s([status] { return (*status)(); }, options);

  Client slow;
  ASSERT_FALSE(slow.connect(s.port()));
  ASSERT_FALSE(slow.send("GET /status.json HTTP/1.1\r\nHost: 127."));  // and never the rest
  ASSERT_TRUE(s.wait_open_connections(1));
  auto t0 = Clock::now();

  // Others are served at once while the slow request is pending.
  for (int i = 0; i < 3; ++i) {
    Reply r = get(s.port(), "/status.json");
    EXPECT_EQ(r.status, 200u) << r.ec.message();
  }
  EXPECT_LT(Clock::now() - t0, 1500ms) << "requests waited on the slow client";

  // The slow client is cut off after the read timeout, without a response.
  auto [got, end] = slow.read_until_closed();
  auto waited = Clock::now() - t0;
  EXPECT_TRUE(closed_by_server(end)) << end.message();
  EXPECT_TRUE(got.empty()) << got;
  EXPECT_GE(waited, 1500ms);
  EXPECT_LT(waited, 8s);
  EXPECT_TRUE(s.wait_open_connections(0));
  EXPECT_EQ(get(s.port(), "/").status, 200u);
}

TEST(HttpStatus, ConnectionsOverTheCapAreClosed) {
  auto status = std::make_shared<FakeStatus>();
  HttpStatusOptions options;
  options.max_connections = 2;
  options.read_timeout = 30s;
  Served s([status] { return (*status)(); }, options);

  auto idle1 = std::make_unique<Client>();
  auto idle2 = std::make_unique<Client>();
  ASSERT_FALSE(idle1->connect(s.port()));
  ASSERT_FALSE(idle2->connect(s.port()));
  ASSERT_TRUE(s.wait_open_connections(2));

  Client extra(5s);
  ASSERT_FALSE(extra.connect(s.port()));  // the kernel accepts; the server closes it
  extra.send(request("GET", "/status.json"));
  auto [got, end] = extra.read_until_closed();
  EXPECT_TRUE(closed_by_server(end)) << end.message();
  EXPECT_TRUE(got.empty()) << got;
  EXPECT_EQ(status->calls(), 0);

  idle1.reset();  // the server sees the end of stream and frees the slot
  ASSERT_TRUE(s.wait_open_connections(1));
  EXPECT_EQ(get(s.port(), "/status.json").status, 200u);
  idle2.reset();
  EXPECT_TRUE(s.wait_open_connections(0));
}

TEST(HttpStatus, StopClosesEverythingAndEndsTheLoop) {
  auto status = std::make_shared<FakeStatus>();
  Served s([status] { return (*status)(); });
  uint16_t port = s.port();
  Client idle;
  ASSERT_FALSE(idle.connect(port));
  Client partial;
  ASSERT_FALSE(partial.connect(port));
  ASSERT_FALSE(partial.send("GET / HTTP/1.1\r\n"));
  ASSERT_TRUE(s.wait_open_connections(2));

  auto t0 = Clock::now();
  s.stop_and_join();  // exits the binary if run() does not return
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_TRUE(closed_by_server(idle.read_until_closed().second));
  EXPECT_TRUE(closed_by_server(partial.read_until_closed().second));
  Client late;
  EXPECT_EQ(late.connect(port), asio::error::connection_refused);
  s.server().stop();  // again, with the loop gone: harmless
}

TEST(HttpStatus, ListenFailureNamesTheEndpoint) {
  asio::io_context io;
  HttpStatusServer first(io, loopback(0), [] { return std::string("{}"); });
  try {
    HttpStatusServer second(io, loopback(first.port()), [] { return std::string("{}"); });
    FAIL() << "a second server listened on the same port";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.port())), std::string::npos) << e.what();
  }
}

// ---- headless Chromium -----------------------------------------------------

bool have_chromium() { return std::system("command -v chromium >/dev/null 2>&1") == 0; }

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The DOM after the page's scripts ran for 5 s of virtual time. `timeout`
// bounds the browser at 60 s whatever happens; chromium's own log goes to a
// file that a failure prints.
std::string dump_dom(uint16_t port, const std::string& name) {
  auto dir = test::temp_dir("http-status-" + name);
  auto dom = dir / "dom.html";
  auto log = dir / "chromium.log";
  std::string cmd = "timeout -k 5 60 chromium --headless=new --no-sandbox --disable-gpu --no-first-run "
                    "--disable-dev-shm-usage --user-data-dir='" + (dir / "profile").string() +
                    "' --virtual-time-budget=5000 --dump-dom http://127.0.0.1:" + std::to_string(port) +
                    "/ > '" + dom.string() + "' 2> '" + log.string() + "' < /dev/null";
  int rc = std::system(cmd.c_str());
  std::string out = read_file(dom);
  EXPECT_EQ(rc, 0) << cmd << "\n" << read_file(log);
  EXPECT_NE(out.find("</html>"), std::string::npos) << "no DOM dumped; chromium said:\n" << read_file(log);
  std::filesystem::remove_all(dir);
  return out;
}

// The text of the element with this id, as Chromium serialized it (the
// elements with ids hold text only).
std::string text_of(const std::string& dom, const std::string& id) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex("id=\"" + id + "\"[^>]*>([^<]*)<"))) return "<no element id=" + id + ">";
  return m[1].str();
}

const std::regex kCurvePath(R"re(<path id="loss-curve-path" d="M[0-9.]+ [0-9.]+( L[0-9.]+ [0-9.]+)+")re");

TEST(HttpStatusChromium, PageRendersTheStatusWithItsScript) {
  if (!have_chromium()) GTEST_SKIP() << "chromium is not on PATH (Debian: apt-get install chromium)";
  auto status = std::make_shared<FakeStatus>();
  status->update([](nlohmann::json& j) {
    j["step"] = 1234;
    j["loss"] = 0.4321;
    j["loss_curve"] = {{0, 2.5}, {400, 1.1}, {800, 0.6}, {1234, 0.4321}};
  });
  Served s([status] { return (*status)(); });
  // The values below come from the script: the static page has none of them.
  const std::string& page = HttpStatusServer::page_html();
  for (const char* v : {"1234", "0.4321", "stories-zo", "worker-a", "stale_epoch", "data-member-id="})
    ASSERT_EQ(page.find(v), std::string::npos) << v;
  ASSERT_FALSE(std::regex_search(page, kCurvePath));

  std::string dom = dump_dom(s.port(), "first");
  EXPECT_EQ(text_of(dom, "run"), "stories-zo");
  EXPECT_EQ(text_of(dom, "step"), "1234");
  EXPECT_EQ(text_of(dom, "steps"), "2000");
  EXPECT_EQ(text_of(dom, "epoch"), "3");
  EXPECT_EQ(text_of(dom, "loss"), "0.4321");
  EXPECT_EQ(text_of(dom, "members-count"), "2");
  EXPECT_EQ(text_of(dom, "min-workers"), "2");
  EXPECT_EQ(text_of(dom, "max-workers"), "8");
  EXPECT_EQ(text_of(dom, "steps-per-second"), "3.50");
  EXPECT_EQ(text_of(dom, "bytes-per-member-per-step"), "60");
  EXPECT_EQ(text_of(dom, "payload-bytes-per-member-per-step"), "32");
  EXPECT_EQ(text_of(dom, "overhead"), "\u00d71.88");
  EXPECT_EQ(text_of(dom, "rejections-total"), "3");
  EXPECT_EQ(text_of(dom, "connection"), "live");
  EXPECT_NE(dom.find("<tr data-member-id=\"0\"><td>0</td><td>worker-a</td><td>127.0.0.1:7001</td>"), std::string::npos)
      << dom;
  EXPECT_NE(dom.find("data-reason=\"stale_epoch\""), std::string::npos);
  EXPECT_NE(dom.find("data-reason=\"hash_mismatch\""), std::string::npos);
  // A member's name is text, never markup.
  EXPECT_NE(dom.find("&lt;b&gt;bold&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(dom.find("<b>bold</b>"), std::string::npos);
  EXPECT_TRUE(std::regex_search(dom, kCurvePath)) << dom;

  // The provider moves on: a new load shows the new values.
  status->update([](nlohmann::json& j) {
    j["step"] = 1500;
    j["loss"] = 0.3125;
    j["epoch"] = 4;
    j["members"].push_back({{"id", 2}, {"name", "worker-c"}, {"address", "127.0.0.1:7003"}, {"state", "active"},
                            {"last_seen_ms", 10}, {"steps_contributed", 5}});
    j["rejections"]["late"] = 5;
    j["loss_curve"].push_back({1500, 0.3125});
  });
  std::string second = dump_dom(s.port(), "second");
  EXPECT_EQ(text_of(second, "step"), "1500");
  EXPECT_EQ(text_of(second, "loss"), "0.3125");
  EXPECT_EQ(text_of(second, "epoch"), "4");
  EXPECT_EQ(text_of(second, "members-count"), "3");
  EXPECT_EQ(text_of(second, "rejections-total"), "8");
  EXPECT_NE(second.find("<td>worker-c</td>"), std::string::npos);
  EXPECT_TRUE(std::regex_search(second, kCurvePath));
}

TEST(HttpStatusChromium, PagePollsAndFollowsTheRun) {
  if (!have_chromium()) GTEST_SKIP() << "chromium is not on PATH (Debian: apt-get install chromium)";
  // Every fetch sees a later step: after 5 s of (virtual) time on one load,
  // the page has polled several times and shows the latest value it got.
  auto status = std::make_shared<FakeStatus>();
  status->on_call([](nlohmann::json& j, int call) {
    j["step"] = 5000 + call;
    j["loss"] = 1.0 / call;
    j["loss_curve"].push_back({5000 + call, 1.0 / call});
  });
  Served s([status] { return (*status)(); });
  std::string dom = dump_dom(s.port(), "polls");
  int calls = status->calls();
  EXPECT_GE(calls, 3) << "the page fetched /status.json only " << calls << " times in 5 s";
  int shown = std::atoi(text_of(dom, "step").c_str());
  EXPECT_GE(shown, 5002) << "step shown: " << text_of(dom, "step");
  EXPECT_LE(shown, 5000 + calls);
  EXPECT_TRUE(std::regex_search(dom, kCurvePath));
}

}  // namespace
}  // namespace zeroth
