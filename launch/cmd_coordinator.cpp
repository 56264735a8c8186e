// `zeroth coordinator CONFIG --listen HOST:PORT [--run DIR]`: the elastic run's
// authority. Workers (`zeroth worker --join HOST:PORT`) come and go; the
// coordinator commits every step to its ledger (durably, before anyone hears of
// it), keeps its own replica of θ for hash checks and catch-up, and serves a
// status page. Restarted on the same run directory, it goes on from its ledger.
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "comm/tcp/coordinator.h"
#include "core/error.h"
#include "launch/commands.h"
#include "launch/elastic.h"

namespace zeroth::cli {
namespace {

using json = nlohmann::json;

// The run as the coordinator keeps it: ledger, θ replica, per-step hashes,
// metrics and snapshots in the run directory.
class LedgerRun : public tcp::RunState {
 public:
  LedgerRun(const TrainContext& ctx, LedgerFile& ledger)
      : ctx_(ctx),
        c_(ctx.config),
        ledger_(ledger),
        replica_(ctx.config.replica(), *ctx.model, ctx.member_threads),
        entries_(ledger.entries()) {
    // Rebuild θ: fused replay between hash checkpoints, and the last few
    // entries one by one, so a worker that was at any recent step (or at a
    // checkpoint) can resume from its own state.
    hashes_[0] = replica_.hash();
    const uint64_t n = entries_.size(), k = uint64_t(c_.run.hash_every);
    const uint64_t tail = n > 64 ? n - 64 : 0;
    std::span<const StepEntry> all(entries_);
    while (replica_.steps() < n) {
      const uint64_t s = replica_.steps();
      const uint64_t next = s < tail ? std::min(tail, (s / k + 1) * k) : s + 1;
      replica_.replay(all.subspan(s, next - s));
      hashes_[next] = replica_.hash();
    }
    metrics_.open(ctx.dir.metrics(), std::ios::app);
  }
  uint64_t steps_done() const override { return replica_.steps(); }
  std::string hash_at(uint64_t steps) const override {
    auto it = hashes_.find(steps);
    return it == hashes_.end() ? "" : it->second;
  }
  float scale() const override { return replica_.scale(); }
  float lr(uint64_t step) const override { return c_.optimizer.lr_at(step); }
  Filtered filter(StepEntry& e) override {
    const CommitFilterStats st = replica_.commit_filter(e);
    return {st.robust.clipped, st.robust.trimmed, st.screened};
  }
  std::string filter_rule() const override { return c_.robust.rule; }
  void commit(const StepEntry& e) override {
    ledger_.append(e, true);  // durable: fsync before any member hears of it
    entries_.push_back(e);
    replica_.apply(e);
    const std::string h = replica_.hash();
    hashes_[replica_.steps()] = h;
    metrics_ << json{{"event", "step"}, {"step", e.step}, {"epoch", e.epoch}, {"records", e.records.size()},
                     {"scale", e.scale}, {"lr", e.lr}, {"hash", h}}.dump()
             << "\n" << std::flush;
    if (c_.run.snapshot_every > 0 && replica_.steps() % uint64_t(c_.run.snapshot_every) == 0)
      write_snapshot(ctx_.dir, replica_.steps(), h, replica_.theta().snapshot());
  }
  std::vector<StepEntry> entries(uint64_t from, uint64_t to) const override {
    return {entries_.begin() + ptrdiff_t(from), entries_.begin() + ptrdiff_t(std::min<uint64_t>(to, entries_.size()))};
  }
  std::optional<std::pair<uint64_t, std::vector<uint8_t>>> snapshot() const override {
    if (!replica_.snapshot_restores()) return std::nullopt;  // state beside θ: replay from θ_0
    const auto snap = latest_snapshot(ctx_.dir, replica_.steps());
    if (!snap || snap->step == 0) return std::nullopt;
    std::ifstream in(ctx_.dir.snapshot(snap->step), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return std::nullopt;
    return std::make_pair(snap->step, std::move(bytes));
  }
  const Replica& replica() const { return replica_; }
  void log(const json& j) { metrics_ << j.dump() << "\n" << std::flush; }

 private:
  const TrainContext& ctx_;
  const TrainConfig& c_;
  LedgerFile& ledger_;
  Replica replica_;
  std::vector<StepEntry> entries_;
  std::map<uint64_t, std::string> hashes_;
  std::ofstream metrics_;
};

uint32_t first_free_member_id(const std::vector<StepEntry>& history) {
  uint32_t next = 0;
  for (const auto& e : history)
    for (const auto& r : e.records) next = std::max(next, r.member + 1);
  return next;
}

}  // namespace

Runner add_coordinator(CLI::App& app) {
  struct Options {
    std::string config, listen = "127.0.0.1:7070", http = "127.0.0.1:0", run, secret, tls_cert, tls_key;
    std::vector<std::string> sets;
    bool no_http = false;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("coordinator", "Coordinate an elastic run: workers join and leave over TCP "
                                                "(zeroth worker --join HOST:PORT); restart on the same --run to go on");
  sub->add_option("config", opt->config, "YAML recipe (see configs/; its elastic section)")->required();
  sub->add_option("--listen", opt->listen, "HOST:PORT for workers (default 127.0.0.1:7070; 0.0.0.0:PORT for all)");
  sub->add_option("--run", opt->run, "Run directory (default: the config's run.dir); an existing run continues");
  sub->add_option("--http", opt->http, "HOST:PORT of the read-only status page (default 127.0.0.1, any free port)");
  sub->add_flag("--no-http", opt->no_http, "No status page");
  sub->add_option("--secret", opt->secret, "The run secret file (zeroth token secret FILE): workers must then prove a "
                                           "token or the secret, and every frame is authenticated. Without it the "
                                           "run is open: use only on a network you trust");
  sub->add_option("--tls-cert", opt->tls_cert, "PEM certificate (zeroth token tls): workers then connect over TLS "
                                               "1.3 (zeroth worker --tls --tls-ca CERT), so records, losses and data "
                                               "assignments are hidden from eavesdroppers; needs --tls-key");
  sub->add_option("--tls-key", opt->tls_key, "PEM private key of --tls-cert");
  sub->add_option("--set", opt->sets, "Override a config key, e.g. --set elastic.min_workers=4 (repeatable)");
  return [opt] {
    std::vector<std::string> sets = opt->sets;
    if (!opt->run.empty()) sets.push_back("run.dir=" + opt->run);
    TrainConfig c = load_train_config(opt->config, sets);
    ZEROTH_CHECK(c.zo.redundancy == 1,
                 "{}: zo.redundancy {} is for runs with a fixed set of members (zeroth train, mpirun): elastic members "
                 "come and go, so a direction's group could not be kept whole. Use elastic.spot_p for redundancy "
                 "against lying members here",
                 c.source, c.zo.redundancy);
    ZEROTH_CHECK(c.roles.grad.empty() && c.roles.jvp.empty() && !c.roles.auto_roles,
                 "{}: roles.grad, roles.jvp and roles.auto name members of a fixed set; in an elastic run each "
                 "volunteer picks its own role (zeroth worker --role zo|grad|jvp|auto); roles.grad_slots, "
                 "roles.checkpoint and roles.jvp_directions still apply", c.source);
    ZEROTH_CHECK(c.mode == "zo", "{}: mode {} is for zeroth train and mpirun jobs; an elastic run is the one-byte "
                 "ledger protocol (mode: zo)", c.source, c.mode);
    const auto listen = parse_endpoint(opt->listen, "--listen");
    ZEROTH_CHECK(opt->tls_cert.empty() == opt->tls_key.empty(),
                 "give both --tls-cert and --tls-key (zeroth token tls --out DIR writes DIR/cert.pem and DIR/key.pem)");
    // Checked before the model loads: a bad certificate fails at once.
    const auto tls = opt->tls_cert.empty() ? nullptr : tcp::tls_server_context(opt->tls_cert, opt->tls_key);
    std::optional<Endpoint> http;
    if (!opt->no_http) http = parse_endpoint(opt->http, "--http");
    c.run.resume = std::filesystem::exists(RunDir{c.run.dir}.ledger());
    c.run.members = 1;
    fmt::print(stderr, "zeroth coordinator: {} ({} steps, {}..{} workers)\n", c.source, c.run.steps,
               c.elastic.min_workers, c.elastic.max_workers);
    TrainContext ctx = make_train_context(c);
    fmt::print(stderr, "task: {}\n", ctx.task->describe());
    std::string theta0;
    {
      const Replica probe(c.replica(), *ctx.model, ctx.member_threads);
      theta0 = probe.hash();
    }
    auto ledger = prepare_run_dir(ctx, c, theta0);
    LedgerRun run(ctx, *ledger);
    const uint64_t start = run.steps_done();
    EvalResult before;
    const bool has_dev = !ctx.task->examples(Split::Dev).empty();
    const PerturbedLora theta(run.replica().lora(), c.zo.distribution, {Variant{}});
    if (has_dev && start == 0) {
      before = evaluate(*ctx.model, *ctx.task, Split::Dev, c.eval.batch_tokens, &theta);
      fmt::print(stderr, "dev before training: loss {:.4f}{}\n", before.loss,
                 before.accuracy >= 0 ? fmt::format(", accuracy {:.2f}%", 100 * before.accuracy) : "");
    }

    tcp::CoordinatorOptions o;
    o.listen = listen;
    o.http = http;
    o.run_name = c.run.dir;
    o.min_workers = uint32_t(c.elastic.min_workers);
    o.max_workers = uint32_t(c.elastic.max_workers);
    o.heartbeat_s = c.elastic.heartbeat_s;
    o.missed_heartbeats = c.elastic.missed_heartbeats;
    o.step_deadline_s = c.elastic.step_deadline_s;
    o.wait_s = c.elastic.wait_s;
    o.steps = uint64_t(c.run.steps);
    o.hash_every = uint32_t(c.run.hash_every);
    o.slots = uint32_t(c.zo.q);
    o.grad_slots = uint32_t(c.roles.slots_of_grad(c.zo.q));
    o.exact = c.zo.exact_gradients;
    o.curvature = c.curvature_records();
    o.base_hash = ctx.base_hash;
    o.config_yaml = c.to_yaml();
    o.first_member_id = first_free_member_id(ctx.history);
    o.max_per_identity = uint32_t(c.elastic.max_per_identity);
    o.joins_per_minute = uint32_t(c.elastic.joins_per_minute);
    o.spot_p = c.elastic.spot_p;
    o.spot_tolerance = c.elastic.spot_tolerance;
    o.spot_tolerances = c.elastic.spot_tolerances;
    o.spot_partners = c.elastic.spot_partners;
    o.spot_seed = c.run.seed;
    o.tls = tls;
    if (!opt->secret.empty()) {
      o.secret = tcp::read_secret(opt->secret);
      o.revoked_path = ctx.dir.root + "/revoked";
    } else {
      fmt::print(stderr, "coordinator: no --secret: anyone who can reach {} may join (trusted networks only)\n",
                 opt->listen);
    }

    asio::io_context io;
    tcp::Coordinator coord(io, o, run);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (!ec) {
        fmt::print(stderr, "coordinator: {} — stopping; the ledger is intact (restart on the same --run to go on)\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
        io.stop();
      }
    });
    coord.on_done = [&] { signals.cancel(); };
    coord.start();
    io.run();
    signals.cancel();
    if (!coord.done()) return 130;
    ZEROTH_CHECK(coord.failure().empty(), "{}", coord.failure());

    const uint64_t steps = run.steps_done();
    const std::string final_hash = run.replica().hash();
    json s = {{"steps", steps}, {"final_hash", final_hash}, {"transport", "tcp coordinator"},
              {"trainable_parameters", run.replica().theta().size()},
              {"rejections", coord.rejections().by_reason}, {"epochs", coord.epoch()}};
    const json status = json::parse(coord.status_json());
    s["bytes_per_member_per_step"] = status["bytes_per_member_per_step"];
    s["payload_bytes_per_member_per_step"] = status["payload_bytes_per_member_per_step"];
    s["spot_checks"] = status["spot_checks"];
    if (has_dev) {
      const EvalResult after = evaluate(*ctx.model, *ctx.task, Split::Dev, c.eval.batch_tokens, &theta);
      fmt::print(stderr, "dev after training: loss {:.4f}{}\n", after.loss,
                 after.accuracy >= 0 ? fmt::format(", accuracy {:.2f}%", 100 * after.accuracy) : "");
      s["dev_after"] = {{"loss", after.loss}, {"accuracy", after.accuracy}};
      if (start == 0) s["dev_before"] = {{"loss", before.loss}, {"accuracy", before.accuracy}};
    }
    if (c.run.snapshot_every > 0 && steps > start)
      write_snapshot(ctx.dir, steps, final_hash, run.replica().theta().snapshot());
    std::ofstream(ctx.dir.summary()) << s.dump(2) << "\n";
    fmt::print("steps: {}\nfinal hash: {}\nbytes per member per step: {:.1f} on the socket ({:.1f} payload)\n"
               "rejections: {}\nrun directory: {}\n",
               steps, final_hash, status["bytes_per_member_per_step"].get<double>(),
               status["payload_bytes_per_member_per_step"].get<double>(), json(coord.rejections().by_reason).dump(),
               ctx.dir.root);
    return 0;
  };
}

}  // namespace zeroth::cli
