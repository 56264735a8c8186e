// `zeroth status HOST:PORT`: asks a coordinator for its status over the worker
// protocol and prints membership, step rate, loss, bytes and rejections.
#include <cstdint>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "comm/tcp/connection.h"
#include "core/error.h"
#include "launch/commands.h"
#include "launch/elastic.h"

namespace zeroth::cli {

Runner add_status(CLI::App& app) {
  struct Options {
    std::string address, token, secret, tls_ca;
    bool json = false, tls = false;
    double timeout_s = 5;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("status", "Print an elastic run's status (from its coordinator)");
  sub->add_option("address", opt->address, "The coordinator's HOST:PORT")->required();
  sub->add_flag("--json", opt->json, "Print the raw JSON");
  sub->add_option("--token", opt->token, "A member token (or a file holding it), for a run with a secret");
  sub->add_option("--secret", opt->secret, "The run secret file, for a run with a secret");
  sub->add_flag("--tls", opt->tls, "Connect over TLS (a coordinator with --tls-cert); needs --tls-ca");
  sub->add_option("--tls-ca", opt->tls_ca, "PEM file the coordinator's certificate must verify against");
  sub->add_option("--timeout", opt->timeout_s, "Seconds to wait for the answer (default 5)");
  return [opt] {
    const auto ep = parse_endpoint(opt->address, "address");
    const auto tls = client_tls(opt->tls, opt->tls_ca);
    asio::io_context io;
    Socket s(io);
    boost::system::error_code ec;
    s.connect(ep, ec);
    ZEROTH_CHECK(!ec, "cannot reach the coordinator at {}: {}", opt->address, ec.message());
    auto conn = connect_to_coordinator(std::move(s), tls, host_of(opt->address));
    std::string text, error;
    const auto cred = load_credential(opt->token, opt->secret);
    ChallengeMsg challenge;
    tcp::Nonce nonce_w{};
    conn->start(
        [&](const FrameHeader& h, std::vector<uint8_t> body) {
          if (h.type == FrameType::Challenge) {
            if (!cred) {
              error = "this run requires a credential: pass --token or --secret";
              conn->close("no credential", false);
              return;
            }
            challenge = decode_challenge(body);
            conn->send(FrameType::Hello, 0, 0, hello_for(*cred, challenge, nonce_w));
          } else if (h.type == FrameType::HelloOk) {
            if (!tcp::check_hello_ok(cred->key, challenge.nonce, nonce_w, decode_hello_ok(body).proof)) {
              error = "the coordinator failed to prove it knows the key";
              conn->close("bad hello-ok", false);
              return;
            }
            conn->set_keys(tcp::worker_keys(cred->key, challenge.nonce, nonce_w));
            conn->send(FrameType::StatusRequest, 0, 0, std::vector<uint8_t>{});
          } else if (h.type == FrameType::Refused) {
            error = decode_text(body).text;
            conn->close("refused", false);
          } else if (h.type == FrameType::Status) {
            text = decode_text(body).text;
            conn->close("done", false);
          }
        },
        [&](const std::string& why, const FrameError*) {
          if (text.empty() && error.empty()) error = why;
        });
    if (!cred) conn->send(FrameType::StatusRequest, 0, 0, std::vector<uint8_t>{});
    io.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(opt->timeout_s)));
    ZEROTH_CHECK(!text.empty(), "no status from {} within {:.0f} s{}", opt->address, opt->timeout_s,
                 error.empty() ? "" : ": " + error);
    if (opt->json) {
      fmt::print("{}\n", text);
      return 0;
    }
    const auto j = nlohmann::json::parse(text);
    fmt::print("run {}: step {}/{}, epoch {}{}\n", j["run"].get<std::string>(), j["step"].get<uint64_t>(),
               j["steps"].get<uint64_t>(), j["epoch"].get<uint64_t>(),
               j["done"].get<bool>() ? " (complete)" : "");
    fmt::print("members: {} (min {}, max {})\n", j["members"].size(), j["min_workers"].get<int>(),
               j["max_workers"].get<int>());
    for (const auto& m : j["members"])
      fmt::print("  {:>4} {:<20} {:<22} {:<14} {:<4} {:<12} last seen {} ms ago, {} steps\n", m["id"].get<uint32_t>(),
                 m["name"].get<std::string>(), m["address"].get<std::string>(), m.value("backend", std::string("?")),
                 m.value("role", std::string("?")), m["state"].get<std::string>(),
                 m["last_seen_ms"].get<int64_t>(), m["steps_contributed"].get<uint64_t>());
    fmt::print("steps/s: {:.3f}; last step {:.3f} s; loss {}\n", j["steps_per_second"].get<double>(),
               j["last_step_seconds"].get<double>(), j["loss"].is_null() ? "-" : fmt::format("{:.4f}", j["loss"].get<double>()));
    fmt::print("bytes per member per step: {:.1f} on the socket, {:.1f} payload\n",
               j["bytes_per_member_per_step"].get<double>(), j["payload_bytes_per_member_per_step"].get<double>());
    std::string rej;
    for (const auto& [k, v] : j["rejections"].items()) rej += fmt::format("{}{} {}", rej.empty() ? "" : ", ", k, v.get<uint64_t>());
    fmt::print("rejections: {}\n", rej.empty() ? "none" : rej);
    return 0;
  };
}

}  // namespace zeroth::cli
