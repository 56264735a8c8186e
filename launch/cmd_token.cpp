// `zeroth token`: credentials of an authenticated elastic run.
//   zeroth token secret FILE                              a new run secret (0600)
//   zeroth token issue --secret FILE --name N --expires 6h a member token
//   zeroth token revoke N --run DIR                       refused from its next heartbeat tick on
//   zeroth token tls --out DIR [--name HOST]... [--days N]  the coordinator's TLS key and self-signed cert
#include <chrono>
#include <cstdint>
#include <fmt/format.h>

#include "comm/tcp/auth.h"
#include "comm/tcp/tls.h"
#include "core/error.h"
#include "launch/commands.h"

namespace zeroth::cli {
namespace {

// "90s", "30m", "6h", "7d" → seconds: digits only (no sign, no spaces), at
// least one second and at most kMaxDays days, so nothing wraps or overflows.
constexpr uint64_t kMaxDays = 3650;
uint64_t parse_duration(const std::string& s) {
  size_t used = 0;
  while (used < s.size() && s[used] >= '0' && s[used] <= '9') ++used;
  const std::string unit = s.substr(used);
  const uint64_t mult = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  ZEROTH_CHECK(used > 0 && used <= 12 && mult > 0,
               "--expires {}: expected a positive whole number and a unit: 90s, 30m, 6h or 7d", s);
  const uint64_t n = std::stoull(s.substr(0, used));
  ZEROTH_CHECK(n > 0 && n <= kMaxDays * 86400 / mult, "--expires {}: must be between 1s and {} days", s, kMaxDays);
  return n * mult;
}

}  // namespace

Runner add_token(CLI::App& app) {
  struct Options {
    std::string secret_out, secret, name, expires = "24h", revoke, run;
    tcp::SelfSignedRequest tls;
    std::vector<std::string> tls_names;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("token", "Credentials for authenticated elastic runs (zeroth coordinator --secret)");
  sub->require_subcommand(1);
  auto* secret = sub->add_subcommand("secret", "Create a new run secret file (mode 0600; never overwritten)");
  secret->add_option("file", opt->secret_out, "Where to write it")->required();
  auto* issue = sub->add_subcommand("issue", "Issue a member token (prints it)");
  issue->add_option("--secret", opt->secret, "The run secret file")->required();
  issue->add_option("--name", opt->name, "The member's name (letters, digits, '_' or '-')")->required();
  issue->add_option("--expires", opt->expires, "Lifetime: 90s, 30m, 6h, 7d (default 24h)");
  auto* revoke = sub->add_subcommand("revoke", "Revoke a member's tokens (its name) in a run directory");
  revoke->add_option("name", opt->revoke, "The member's name")->required();
  revoke->add_option("--run", opt->run, "The coordinator's run directory")->required();
  auto* tls = sub->add_subcommand("tls", "Create the coordinator's TLS key (EC P-256, 0600) and a self-signed "
                                         "certificate: DIR/key.pem and DIR/cert.pem (never overwritten without --force)");
  tls->add_option("--out", opt->tls.dir, "Directory to write key.pem and cert.pem to")->required();
  tls->add_option("--name", opt->tls_names, "A host name or IP address workers dial (repeatable; default localhost "
                                            "and 127.0.0.1)");
  tls->add_option("--days", opt->tls.days, "Validity in days (default 365)");
  tls->add_flag("--force", opt->tls.force, "Replace existing key.pem and cert.pem");
  return [opt, secret, issue, revoke, tls] {
    if (secret->parsed()) {
      tcp::write_new_secret(opt->secret_out);
      fmt::print("wrote a new run secret to {} (keep it private; issue tokens from it)\n", opt->secret_out);
    } else if (issue->parsed()) {
      const uint64_t now = uint64_t(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch()).count());
      const auto t = tcp::issue_token(tcp::read_secret(opt->secret), opt->name, now + parse_duration(opt->expires));
      fmt::print("{}\n", t.text());
    } else if (revoke->parsed()) {
      tcp::append_revoked(opt->run + "/revoked", opt->revoke);
      fmt::print("revoked {} in {} (the coordinator drops it within a heartbeat)\n", opt->revoke, opt->run);
    } else if (tls->parsed()) {
      if (!opt->tls_names.empty()) opt->tls.names = opt->tls_names;
      const auto f = tcp::write_self_signed(opt->tls);
      std::string names;
      for (const auto& n : opt->tls.names) names += (names.empty() ? "" : ", ") + n;
      fmt::print("wrote {} (private, 0600) and {} (for {}; valid {} days)\n"
                 "coordinator: --tls-cert {} --tls-key {}\nworkers:     --tls --tls-ca {}\n",
                 f.key, f.cert, names, opt->tls.days, f.cert, f.key, f.cert);
    }
    return 0;
  };
}

}  // namespace zeroth::cli
