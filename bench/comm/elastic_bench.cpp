// Elastic-run figures, measured on
// loopback in one process, each beside its baseline from the same run:
//   1. catch-up of 10^3 and 10^4 ledger steps: a fresh worker joins a
//      coordinator holding that many entries (8 members × 1 record each) and
//      replays them into SmolLM2-135M's LoRA set (r 8 on q and v: 460,800
//      parameters): seconds from Join to caught up, and parameter·records/s;
//      baseline: the same fused replay with no network.
//   2. coordinator step overhead vs members: M simulated members (each a
//      connection that answers every Step at once with a valid Result) for
//      M = 1 … 1000+: time per step (Step out → all Results in → Commit out),
//      per-member cost, and steps/s. Commits are kept in memory (the real
//      coordinator also fsyncs each one: see the fsync figure printed beside).
//   3. bytes on the socket per member per step vs payload bytes (one per
//      perturbation).
//   4. TLS 1.3 vs plaintext (comm/tcp/tls.h) for M members: time per step and
//      bytes on the socket per member per step, each way, both measured here.
//   elastic_bench [--members 1,10,100,1000] [--steps 30] [--catchup 1000,10000] [--tls-members 10]
#include <cstdint>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "comm/tcp/coordinator.h"
#include "comm/tcp/tls.h"
#include "comm/transport.h"
#include "core/backend.h"
#include "optim/codec.h"
#include "optim/ledger.h"
#include "optim/trainable.h"
#include "optim/update.h"

namespace zeroth::tcp {
namespace {

using Clock = std::chrono::steady_clock;
const std::string kHash(32, '0');

// A run held in memory: entries and a constant hash (the bench measures the
// protocol, not θ).
class MemoryRun : public RunState {
 public:
  uint64_t steps_done() const override { return entries_.size(); }
  std::string hash_at(uint64_t) const override { return kHash; }
  float scale() const override { return 1.0f; }
  float lr(uint64_t) const override { return 1e-3f; }
  Filtered filter(StepEntry&) override { return {}; }
  std::string filter_rule() const override { return "none"; }
  void commit(const StepEntry& e) override { entries_.push_back(e); }
  std::vector<StepEntry> entries(uint64_t from, uint64_t to) const override {
    return {entries_.begin() + ptrdiff_t(from), entries_.begin() + ptrdiff_t(std::min<uint64_t>(to, entries_.size()))};
  }
  std::optional<std::pair<uint64_t, std::vector<uint8_t>>> snapshot() const override { return std::nullopt; }
  std::vector<StepEntry> entries_;
};

StepEntry random_entry(uint64_t step, uint32_t members, std::mt19937& rng) {
  StepEntry e;
  e.step = step;
  e.scale = 1.0f;
  e.lr = 1e-3f;
  for (uint32_t m = 0; m < members; ++m) {
    Record r;
    r.member = m;
    r.code = uint8_t(rng() % 255);
    if (r.code == 0x80) r.code = 0;
    e.records.push_back(r);
  }
  return e;
}

// SmolLM2-135M's LoRA set: 30 layers × (A_q 8×576, B_q 576×8, A_v 8×576, B_v 192×8).
struct LoraShapedSet {
  std::vector<std::vector<float>> storage;
  TrainableSet set;
  LoraShapedSet() {
    for (int l = 0; l < 30; ++l)
      for (const auto& [name, rows, cols] : {std::tuple{"q.A", 8, 576}, {"q.B", 576, 8}, {"v.A", 8, 576}, {"v.B", 192, 8}}) {
        storage.emplace_back(size_t(rows * cols), 0.01f);
        set.add(fmt::format("layers.{}.{}", l, name), Shape{rows, cols}, storage.back().data());
      }
  }
};

// A member simulated on its own connection: joins, follows catch-up, answers
// every Step with a valid one-record Result.
struct SimMember {
  std::shared_ptr<Connection> conn;
  uint32_t id = 0;
  uint64_t epoch = 0;
  std::vector<StepEntry>* catch_up_sink = nullptr;  // collects catch-up entries
  std::function<void()> on_caught_up;
};

void start_member(asio::io_context& io, uint16_t port, const std::shared_ptr<SimMember>& m,
                  const std::shared_ptr<ssl::context>& tls = nullptr) {
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  m->conn = tls ? std::make_shared<Connection>(std::move(s), tls, Connection::TlsRole::Client, "127.0.0.1")
                : std::make_shared<Connection>(std::move(s));
  std::weak_ptr<SimMember> weak = m;
  m->conn->start(
      [weak](const FrameHeader& h, std::vector<uint8_t> body) {
        auto m = weak.lock();
        if (!m) return;
        switch (h.type) {
          case FrameType::Welcome: m->id = decode_welcome(body).member; break;
          case FrameType::CatchUp: {
            auto c = decode_catch_up(body);
            if (c.part == CatchUpPart::Entries && m->catch_up_sink)
              for (auto& e : c.entries) m->catch_up_sink->push_back(std::move(e));
            if (c.part == CatchUpPart::End) {
              if (m->on_caught_up) m->on_caught_up();
              m->conn->send(FrameType::Ready, 0, c.snapshot_step, encode(ReadyMsg{c.snapshot_step, kHash}));
            }
            break;
          }
          case FrameType::Step: {
            const auto st = decode_step(body);
            Record r;
            r.member = m->id;
            r.code = uint8_t(st.step % 200);
            ResultMsg res;
            res.member = m->id;
            res.records = encode_member_records(st.step, uint32_t(h.epoch), m->id, 1, false, {r});
            res.loss = 0.5;
            res.tokens = 64;
            res.theta_hash = kHash;
            m->conn->send(FrameType::Result, h.epoch, st.step, encode(res));
            break;
          }
          default: break;
        }
      },
      [](const std::string&, const FrameError*) {});
  m->conn->send(FrameType::Join, 0, 0, encode(JoinMsg{"sim", "", 0, "", false, cpu_backend_class()}));
}

CoordinatorOptions options(uint32_t min_w, uint32_t max_w, uint64_t steps) {
  CoordinatorOptions o;
  o.listen = {asio::ip::make_address("127.0.0.1"), 0};
  o.min_workers = min_w;
  o.max_workers = max_w;
  o.heartbeat_s = 30;  // simulated members send no heartbeats
  o.step_deadline_s = 60;
  o.steps = steps;
  o.hash_every = 1;
  o.slots = 1;
  o.config_yaml = "{}";
  o.base_hash = kHash;
  return o;
}

void bench_catch_up(uint64_t n) {
  std::mt19937 rng(1);
  MemoryRun run;
  for (uint64_t s = 0; s < n; ++s) run.entries_.push_back(random_entry(s, 8, rng));
  LoraShapedSet lora;
  OptimizerConfig oc;
  oc.lr = 1e-3f;
  // Baseline: the same replay, no network.
  double local_s;
  {
    ZerothOrderOptimizer opt(oc, lora.set);
    const auto t0 = Clock::now();
    opt.replay(run.entries_);
    local_s = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  // Over loopback: a coordinator streams the ledger to a fresh member, which
  // decodes and replays it (fused) as it would.
  asio::io_context io;
  Coordinator coord(io, options(1, 8, n + 1), run);
  coord.log = nullptr;
  coord.start();
  std::vector<StepEntry> got;
  auto m = std::make_shared<SimMember>();
  m->catch_up_sink = &got;
  ZerothOrderOptimizer opt(oc, lora.set);
  CodecScale codec(CodecConfig{});
  double net_s = 0;
  const auto t0 = Clock::now();
  m->on_caught_up = [&] {
    opt.replay(got);
    for (const auto& e : got) codec.update(e);
    net_s = std::chrono::duration<double>(Clock::now() - t0).count();
    io.stop();
  };
  start_member(io, coord.port(), m);
  io.run();
  const double pr = double(lora.set.size()) * 8.0 * double(n);
  fmt::print("  {:>6} steps: {:.3f} s over loopback ({:.2e} parameter·records/s, {:.0f} steps/s); "
             "replay alone {:.3f} s ({:.2e}/s); ratio {:.2f}\n",
             n, net_s, pr / net_s, double(n) / net_s, local_s, pr / local_s, net_s / local_s);
  if (got.size() != n) fmt::print("  ERROR: received {} entries, expected {}\n", got.size(), n);
}

// Time per step and the members' bytes on the socket per step after the
// first (joins, catch-up and TLS handshakes happen before it): out = member to
// coordinator, in = coordinator to member.
struct StepFigures {
  double s_per_step = 0, bytes_out = 0, bytes_in = 0;
};

struct TlsPair {
  std::shared_ptr<ssl::context> server, client;
};

StepFigures bench_members(uint32_t members, uint64_t steps, const TlsPair* tls = nullptr, bool report = true) {
  MemoryRun run;
  asio::io_context io;
  CoordinatorOptions o = options(members, members, steps);
  if (tls) o.tls = tls->server;
  Coordinator coord(io, o, run);
  coord.log = nullptr;
  coord.start();
  std::vector<std::shared_ptr<SimMember>> sims;
  for (uint32_t i = 0; i < members; ++i) {
    sims.push_back(std::make_shared<SimMember>());
    start_member(io, coord.port(), sims.back(), tls ? tls->client : nullptr);
  }
  auto wire = [&](bool out) {
    uint64_t n = 0;
    for (const auto& m : sims) n += out ? m->conn->wire_bytes_out() : m->conn->wire_bytes_in();
    return n;
  };
  Clock::time_point first;
  uint64_t seen = 0, out0 = 0, in0 = 0;
  asio::steady_timer poll(io);
  std::function<void()> watch = [&] {
    if (run.steps_done() >= 1 && seen == 0) {
      first = Clock::now();
      seen = 1;
      out0 = wire(true);
      in0 = wire(false);
    }
    if (!coord.done()) {
      poll.expires_after(std::chrono::microseconds(200));
      poll.async_wait([&](boost::system::error_code) { watch(); });
    }
  };
  watch();
  uint64_t out1 = 0, in1 = 0;
  coord.on_done = [&] {  // before the run's end closes the members' connections
    out1 = wire(true);
    in1 = wire(false);
  };
  io.run();
  const double s = std::chrono::duration<double>(Clock::now() - first).count() / double(run.steps_done() - 1);
  const double per = double(members) * double(run.steps_done() - 1);
  const StepFigures f{s, double(out1 - out0) / per, double(in1 - in0) / per};
  if (!report) return f;
  const auto status = coord.status_json();
  const auto b = status.find("\"bytes_per_member_per_step\":");
  const double bytes = std::stod(status.substr(b + 28));
  fmt::print("  {:>5} members: {:8.3f} ms/step, {:6.1f} µs per member, {:7.1f} steps/s; {:.1f} bytes on the socket "
             "per member per step vs 1 payload byte\n",
             members, 1e3 * s, 1e6 * s / members, 1.0 / s, bytes);
  return f;
}

void bench_tls(uint32_t members, uint64_t steps) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("zeroth-bench-tls-{}", ::getpid());
  SelfSignedRequest req;
  req.dir = dir.string();
  const auto files = write_self_signed(req);
  const TlsPair tls{tls_server_context(files.cert, files.key), tls_client_context(files.cert)};
  fs::remove_all(dir);
  fmt::print("4. TLS 1.3 vs plaintext, {} members, {} steps (bytes per member per step on the socket)\n", members,
             steps);
  const StepFigures plain = bench_members(members, steps, nullptr, false);
  const StepFigures secure = bench_members(members, steps, &tls, false);
  for (const auto& [name, f] : {std::pair{"plaintext", plain}, std::pair{"TLS 1.3", secure}})
    fmt::print("  {:>9}: {:.3f} ms/step; member → coordinator {:.1f} B, coordinator → member {:.1f} B\n", name,
               1e3 * f.s_per_step, f.bytes_out, f.bytes_in);
  fmt::print("  ratio TLS / plaintext: time {:.2f}, bytes out {:.2f}, bytes in {:.2f}\n",
             secure.s_per_step / plain.s_per_step, secure.bytes_out / plain.bytes_out,
             secure.bytes_in / plain.bytes_in);
}

void bench_fsync() {
  namespace fs = std::filesystem;
  const auto path = fs::temp_directory_path() / fmt::format("zeroth-fsync-{}.zl", ::getpid());
  LedgerHeader h;
  h.base_hash = kHash;
  auto ledger = LedgerFile::create(path.string(), h);
  std::mt19937 rng(3);
  const int n = 50;
  const auto t0 = Clock::now();
  for (int s = 0; s < n; ++s) ledger.append(random_entry(uint64_t(s), 8, rng), true);
  const double ms = 1e3 * std::chrono::duration<double>(Clock::now() - t0).count() / n;
  fs::remove(path);
  fmt::print("  a durable ledger append (fsync) here: {:.2f} ms per step, on top of the figures above\n", ms);
}

std::vector<uint64_t> list(const std::string& s) {
  std::vector<uint64_t> v;
  for (size_t at = 0; at < s.size();) {
    const size_t c = s.find(',', at);
    v.push_back(std::stoull(s.substr(at, c - at)));
    at = c == std::string::npos ? s.size() : c + 1;
  }
  return v;
}

}  // namespace
}  // namespace zeroth::tcp

int main(int argc, char** argv) {
  std::string members = "1,10,100,1000", catchup = "1000,10000";
  uint64_t steps = 30, tls_members = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--members") members = argv[i + 1];
    else if (a == "--steps") steps = std::stoull(argv[i + 1]);
    else if (a == "--catchup") catchup = argv[i + 1];
    else if (a == "--tls-members") tls_members = std::stoull(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: elastic_bench [--members 1,10,100,1000] [--steps 30] [--catchup 1000,10000] [--tls-members 10]\n");
      return 2;
    }
  }
  // 1000 members are 2000 sockets in this process.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  using namespace zeroth::tcp;
  fmt::print("1. catch-up of N steps into SmolLM2's LoRA set (460,800 parameters, 8 records per step)\n");
  for (const auto n : list(catchup)) bench_catch_up(n);
  fmt::print("2./3. coordinator step overhead vs members ({} steps each; simulated members answer at once)\n", steps);
  for (const auto m : list(members)) bench_members(uint32_t(m), steps);
  bench_fsync();
  bench_tls(uint32_t(tls_members), steps);
  return 0;
}
