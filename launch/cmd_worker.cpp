// `zeroth worker --join HOST:PORT`: a volunteer member of an elastic run. It
// gets the run's config from the coordinator, checks its own copy of the base
// model against the run's by hash, catches up by replaying snapshot + ledger,
// then computes the steps it is given and sends one byte per perturbation.
// When the coordinator goes away it reconnects and catches up again; Ctrl-C
// (or SIGTERM) sends Leave and exits within about a second.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "comm/tcp/connection.h"
#include "comm/transport.h"
#include "core/backend.h"
#include "core/error.h"
#include "launch/commands.h"
#include "launch/elastic.h"
#include "launch/roles.h"

namespace zeroth::cli {
namespace {

using Clock = std::chrono::steady_clock;
std::atomic<bool> g_leave{false};
extern "C" void on_leave_signal(int) { g_leave = true; }

struct Inbound {
  FrameHeader header;
  std::vector<uint8_t> body;
  bool closed = false;
  std::string why;
  bool fatal = false;  // TLS cannot work as set up (one end plaintext, or the certificate refused): no retry
};

// The network side: an io_context thread that owns the connection, sends
// heartbeats and watches the coordinator's; frames go to the compute thread
// through a queue.
class Link {
 public:
  ~Link() { stop(); }
  // A fresh io_context per connection: handlers of an old connection never run
  // against a new one.
  bool connect(const Endpoint& ep, std::string& why) {
    stop();
    io_ = std::make_unique<asio::io_context>();
    heartbeat_ = std::make_unique<asio::steady_timer>(*io_);
    Socket s(*io_);
    boost::system::error_code ec;
    s.connect(ep, ec);
    if (ec) {
      why = ec.message();
      return false;
    }
    {
      std::lock_guard lock(mu_);
      q_.clear();
    }
    conn_ = connect_to_coordinator(std::move(s), tls, tls_host);
    last_heard_ = Clock::now();
    heard_ = false;
    conn_->start(
        [this](const FrameHeader& h, std::vector<uint8_t> body) {
          last_heard_ = Clock::now();
          heard_ = true;
          if (h.type == FrameType::Heartbeat) return;
          // The handshake runs here, on the loop, so the keys are in place
          // before the next frame is read.
          if (h.type == FrameType::Challenge) {
            if (!credential) {
              push({{}, {}, true, "this run requires a credential: pass --token (or --secret)"});
              conn_->close("no credential", false);
              return;
            }
            challenge_ = decode_challenge(body);
            conn_->send(FrameType::Hello, 0, 0, hello_for(*credential, challenge_, nonce_w_));
            return;
          }
          if (h.type == FrameType::HelloOk) {
            const auto ok = decode_hello_ok(body);
            if (!tcp::check_hello_ok(credential->key, challenge_.nonce, nonce_w_, ok.proof)) {
              push({{}, {}, true, "the coordinator failed to prove it knows our key: not the run's coordinator"});
              conn_->close("bad hello-ok", false);
              return;
            }
            conn_->set_keys(tcp::worker_keys(credential->key, challenge_.nonce, nonce_w_));
          }
          push({h, std::move(body), false, ""});
        },
        [this, c = conn_.get()](const std::string& why, const FrameError*) {
          push({{}, {}, true, why, c->tls_mismatch()});
        });
    beat();
    thread_ = std::thread([io = io_.get()] { io->run(); });
    return true;
  }
  void send(FrameType t, uint64_t step, std::vector<uint8_t> body) {
    if (!io_) return;
    asio::post(*io_, [this, t, step, body = std::move(body)] {
      if (conn_) conn_->send(t, epoch.load(), step, body);
    });
  }
  std::optional<Inbound> pop(std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, wait, [&] { return !q_.empty(); })) return std::nullopt;
    Inbound in = std::move(q_.front());
    q_.pop_front();
    return in;
  }
  // Sends Leave and waits (a bounded time) for the coordinator to close the
  // connection in answer. Closing it here instead could make the coordinator's
  // next write fail before it reads the Leave, and it would log a broken link.
  void leave(const std::string& why) {
    if (!io_) return;
    send(FrameType::Leave, 0, encode(TextMsg{why}));
    const auto until = Clock::now() + std::chrono::milliseconds(800);
    while (Clock::now() < until && !closed_seen()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  void stop() {
    if (!io_) return;
    io_->stop();
    if (thread_.joinable()) thread_.join();
    // The loop is stopped: close here, then drop the loop with whatever handlers it still held.
    heartbeat_->cancel();
    if (conn_) conn_->close("stopping", false);
    conn_.reset();
    heartbeat_.reset();
    io_.reset();
  }
  std::atomic<uint64_t> epoch{0};
  std::atomic<double> heartbeat_s{1.0};
  std::atomic<int> missed{5};
  std::optional<Credential> credential;
  std::shared_ptr<tcp::ssl::context> tls;  // none: plaintext
  std::string tls_host;                    // the name the coordinator's certificate must hold
  // Whether the last connection brought any frame (else it never got past
  // the handshakes: a reconnect does not restart the retry window).
  bool heard() const { return heard_; }

 private:
  std::atomic<bool> heard_{false};
  ChallengeMsg challenge_;
  tcp::Nonce nonce_w_{};
  bool closed_seen() {
    std::lock_guard lock(mu_);
    return std::any_of(q_.begin(), q_.end(), [](const Inbound& i) { return i.closed; });
  }
  void push(Inbound in) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(std::move(in));
    }
    cv_.notify_one();
  }
  void beat() {
    if (!conn_ || !conn_->open()) return;
    // Workers are patient: the coordinator evicts a silent worker after one
    // detection bound, a worker gives up on a silent coordinator after four
    // (a short network stall heals without a reconnect; a dead coordinator's
    // socket closes at once anyway).
    const double patience = 4 * heartbeat_s.load() * missed.load();
    if (Clock::now() - last_heard_.load() > std::chrono::duration<double>(patience)) {
      conn_->close(fmt::format("the coordinator was silent for {:.1f} s", patience), false);
      return;
    }
    // Nothing but the handshake goes out before authentication.
    if (!credential || conn_->authenticated()) conn_->send(FrameType::Heartbeat, epoch.load(), 0, std::vector<uint8_t>{});
    heartbeat_->expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(heartbeat_s.load())));
    heartbeat_->async_wait([this](boost::system::error_code ec) {
      if (!ec) beat();
    });
  }
  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<asio::steady_timer> heartbeat_;
  std::shared_ptr<Connection> conn_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Inbound> q_;
  std::atomic<Clock::time_point> last_heard_{Clock::now()};
};

struct WorkerOptions {
  std::string join, name, data, model, trace, token, secret, tls_ca;
  std::string role = "zo";  // zo | grad | jvp | auto (launch/roles.h)
  std::string device = "cpu";            // cpu | cuda (GPU 0)
  std::string cuda_precision = "f32";    // f32 | tf32 | bf16
  bool tls = false;
  std::vector<std::string> sets;
  int threads = 0;
  double retry_s = 60;
  double lie = 0;  // debug: fraction of own codes to falsify
};

class Worker {
 public:
  explicit Worker(const WorkerOptions& o) : o_(o), coordinator_(parse_endpoint(o.join, "--join")) {
    if (!o_.model.empty()) base_hash_ = base_model_hash(o_.model);
    link_.credential = load_credential(o_.token, o_.secret);
    link_.tls = client_tls(o_.tls, o_.tls_ca);
    link_.tls_host = host_of(o_.join);
    if (!o_.trace.empty()) {
      trace_.open(o_.trace, std::ios::app);
      ZEROTH_CHECK(trace_.good(), "--trace {}: cannot open for appending", o_.trace);
    }
  }

  int run() {
    auto lost_at = Clock::now();
    double backoff = 0.1;
    for (;;) {
      if (g_leave) return 0;
      std::string why;
      if (!link_.connect(coordinator_, why)) {
        if (Clock::now() - lost_at > std::chrono::duration<double>(o_.retry_s))
          fail("cannot reach the coordinator at {} for {:.0f} s (--retry-seconds): {}", o_.join, o_.retry_s, why);
        std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
        backoff = std::min(2.0, backoff * 2);
        continue;
      }
      backoff = 0.1;
      // With a credential, Join goes after the handshake (on HelloOk).
      if (!link_.credential) send_join();
      const int rc = serve();
      if (rc >= 0) return rc;
      if (link_.heard()) {
        lost_at = Clock::now();
      } else {
        if (!o_.tls) lost_why_ += " (no frame from the coordinator: if it uses TLS, pass --tls --tls-ca FILE)";
        if (Clock::now() - lost_at > std::chrono::duration<double>(o_.retry_s))
          fail("no answer from the coordinator at {} for {:.0f} s (--retry-seconds): {}", o_.join, o_.retry_s,
               lost_why_);
      }
      fmt::print(stderr, "worker {}: connection lost ({}); reconnecting to {}\n", name(), lost_why_, o_.join);
    }
  }

 private:
  std::string name() const { return o_.name.empty() ? fmt::format("member {}", member_) : o_.name; }

  void send_join() {
    joining_ = true;
    JoinMsg j;
    j.name = o_.name;
    j.base_hash = base_hash_;
    j.steps = replica_ ? replica_->steps() : 0;
    j.theta_hash = replica_ && replica_->steps() > 0 ? replica_->hash() : "";
    j.private_data = !o_.data.empty();
    // Spot checks compare members of one backend class: a GPU member's class
    // names its device generation and GEMM precision.
    j.backend = o_.device == "cuda" ? cuda_backend_class() + "-" + o_.cuda_precision : cpu_backend_class();
    link_.send(FrameType::Join, 0, encode(j));
  }

  // Handles frames until the connection ends (-1: reconnect) or the run does (exit code).
  int serve() {
    for (;;) {
      if (g_leave) {
        link_.leave("stopped by a signal");
        link_.stop();
        fmt::print(stderr, "worker {}: left the run (signal)\n", name());
        return 0;
      }
      auto in = link_.pop(std::chrono::milliseconds(50));
      if (!in) continue;
      if (in->closed) {
        lost_why_ = in->why;
        link_.stop();
        if (in->why.rfind("this run requires a credential", 0) == 0 || in->why.rfind("the coordinator failed", 0) == 0)
          fail("{}", in->why);
        if (in->fatal)
          fail("{}{}", in->why, o_.tls ? "" : " (the coordinator requires TLS: pass --tls --tls-ca FILE)");
        return -1;
      }
      const auto& h = in->header;
      switch (h.type) {
        case FrameType::HelloOk: send_join(); break;  // authenticated: now join
        case FrameType::Welcome: on_welcome(decode_welcome(in->body)); break;
        case FrameType::CatchUp: on_catch_up(decode_catch_up(in->body)); break;
        case FrameType::Step: on_step(h, decode_step(in->body)); break;
        case FrameType::Commit: on_commit(decode_commit(in->body).entry); break;
        case FrameType::Evicted:
          if (joining_) break;  // already asked to join again: one Join per eviction
          fmt::print(stderr, "worker {}: evicted: {}; joining again\n", name(), decode_text(in->body).text);
          send_join();
          break;
        case FrameType::Refused: {
          const auto why = decode_text(in->body).text;
          link_.stop();
          fail("the coordinator refused this worker: {}", why);
        }
        case FrameType::Leave: {
          const auto why = decode_text(in->body).text;
          link_.stop();
          fmt::print(stderr, "worker {}: {} (at step {})\n", name(), why, replica_ ? replica_->steps() : 0);
          if (why == "the run is complete") {
            fmt::print("worker {}: done; {} steps, hash {}\n", name(), replica_->steps(), replica_->hash());
            return 0;
          }
          return 1;
        }
        default:
          fmt::print(stderr, "worker {}: ignoring an unexpected {} frame\n", name(), frame_type_name(h.type));
      }
    }
  }

  void on_welcome(const WelcomeMsg& w) {
    joining_ = false;
    member_ = w.member;
    if (!ctx_) {
      std::vector<std::string> sets = o_.sets;
      if (!o_.model.empty()) sets.push_back("model.path=" + o_.model);
      if (!o_.data.empty()) sets.push_back("task.train=" + o_.data);
      if (o_.threads > 0) sets.push_back(fmt::format("run.threads={}", o_.threads));
      sets.push_back("run.members=1");
      // Where this worker computes is its own choice (--device), whatever the
      // run's config says: read it as a CPU config, then check what a GPU
      // worker cannot run yet in this flag's own terms.
      sets.push_back("model.device=cpu");
      sets.push_back("model.cuda_members=[]");
      TrainConfig c = parse_train_config(w.config_yaml, "the coordinator's config", sets);
      if (o_.device == "cuda") {
        ZEROTH_CHECK(!c.trainable.full, "--device cuda: this run trains full weights (trainable.full), which GPU "
                     "workers do not run yet; join with --device cpu");
        c.model.device = "cuda";
        c.model.cuda_precision = o_.cuda_precision;
      }
      ZEROTH_CHECK(c.elastic.data != "private" || !o_.data.empty(),
                   "this run uses private data (elastic.data: private): pass --data PATH with your own file");
      if (base_hash_.empty()) base_hash_ = base_model_hash(c.model.path);
      ZEROTH_CHECK(base_hash_ == w.base_hash, "your base model {} (hash {}) is not the run's (hash {}); pass --model "
                   "with the run's model file", c.model.path, base_hash_, w.base_hash);
      ctx_ = std::make_unique<TrainContext>(make_train_context(c));
      attach_cuda_model(*ctx_, {0}, true);
      replica_ = std::make_unique<Replica>(ctx_->config.replica(), *ctx_->model, ctx_->member_threads);
      link_.heartbeat_s = c.elastic.heartbeat_s;
      link_.missed = c.elastic.missed_heartbeats;
      fmt::print(stderr, "worker {}: joined as member {}; task: {}\n", o_.name.empty() ? "" : o_.name, member_,
                 ctx_->task->describe());
      choose_role();
    }
    if (w.reset && replica_->steps() > 0) {
      fmt::print(stderr, "worker {}: starting over from θ_0 (the coordinator does not know our state)\n", name());
      replica_->reset();
    }
    ZEROTH_CHECK(replica_->steps() == w.from_step, "catch-up starts at step {} but this worker holds {} steps",
                 w.from_step, replica_->steps());
    theta_from_ = replica_->steps();
    snapshot_.clear();
  }

  void on_catch_up(const CatchUpMsg& m) {
    ZEROTH_CHECK(replica_, "catch-up before welcome");
    if (m.part == CatchUpPart::Snapshot) {
      ZEROTH_CHECK(m.offset == snapshot_.size(), "snapshot chunk at offset {}, expected {}", m.offset, snapshot_.size());
      snapshot_.insert(snapshot_.end(), m.bytes.begin(), m.bytes.end());
      if (snapshot_.size() == m.total) restore_snapshot(m.snapshot_step);
    } else if (m.part == CatchUpPart::Entries) {
      // Entries before a snapshot's step only move the codec scale and screen.
      replica_->replay(m.entries);
      for (const auto& e : m.entries)
        if (e.step >= theta_from_) trace_commit(e, "");
    } else {
      const std::string h = replica_->hash();
      ZEROTH_CHECK(replica_->steps() == m.snapshot_step, "catch-up ended at step {} but this worker holds {}",
                   m.snapshot_step, replica_->steps());
      if (h != m.hash)
        fmt::print(stderr, "worker {}: after catch-up our hash {} differs from the coordinator's {}\n", name(), h,
                   m.hash);
      if (trace_) trace_ << fmt::format("ready {} {} {}\n", replica_->steps(), h, member_) << std::flush;
      link_.send(FrameType::Ready, replica_->steps(), encode(ReadyMsg{replica_->steps(), h, role_}));
    }
  }

  void restore_snapshot(uint64_t step) {
    const Snapshot snap = snapshot_from_bytes(snapshot_, step, "the coordinator");
    // θ is at `step`; the entries 0..step-1 that follow still fold into the codec.
    replica_->restore(snap.tensors, step, snap.hash, "the coordinator's snapshot");
    theta_from_ = step;
    snapshot_.clear();
  }

  void on_step(const FrameHeader& h, const StepMsg& s) {
    ZEROTH_CHECK(replica_, "a step before welcome");
    if (s.step != replica_->steps()) {
      fmt::print(stderr, "worker {}: asked for step {} but holds {}; joining again\n", name(), s.step, replica_->steps());
      send_join();
      return;
    }
    link_.epoch = h.epoch;
    const auto pos = std::find(s.members.begin(), s.members.end(), member_);
    if (pos == s.members.end()) return;
    const uint32_t lane = uint32_t(pos - s.members.begin());
    const TrainConfig& c = ctx_->config;
    if (s.scale != replica_->scale())
      fmt::print(stderr, "worker {}: codec scale {} differs from the coordinator's {}\n", name(), replica_->scale(),
                 s.scale);
    MemberStepResult res = member_step(s, member_, lane);
    if (o_.lie > 0)  // the attack suite's liar: flips the sign of a fraction of its own codes
      for (auto& rec : res.records)
        if (std::uniform_real_distribution<double>(0, 1)(lie_rng_) < o_.lie) rec.code = attack_code(Attack::SignFlip, rec.code);
    ResultMsg r;
    r.member = member_;
    r.records = encode_member_records(s.step, uint32_t(h.epoch), member_, slots(), c.zo.exact_gradients, res.records,
                                      c.curvature_records());
    // Spot checks asked of this worker: another member's records, recomputed.
    for (const auto& chk : s.checks) {
      if (chk.checker != member_) continue;
      // The coordinator pairs members of one role: the target's records are
      // computed the way ours are, on its key and lane.
      const MemberStepResult other = member_step(s, chk.target, chk.lane);
      r.checks.emplace_back(chk.target, encode_member_records(s.step, uint32_t(h.epoch), chk.target, slots(),
                                                              c.zo.exact_gradients, other.records,
                                                              c.curvature_records()));
    }
    r.loss = res.loss;
    r.tokens = res.tokens;
    if (s.step % uint64_t(c.run.hash_every) == 0) r.theta_hash = replica_->hash();
    link_.send(FrameType::Result, s.step, encode(r));
  }

  void on_commit(const StepEntry& e) {
    ZEROTH_CHECK(replica_, "a commit before welcome");
    if (e.step != replica_->steps()) {
      fmt::print(stderr, "worker {}: commit {} arrived at step {}; joining again\n", name(), e.step, replica_->steps());
      send_join();
      return;
    }
    replica_->apply(e);
    trace_commit(e, replica_->hash());
  }

  // --role: zo, grad, jvp, or auto (this machine's free memory against one
  // measured backward, then one forward-mode pass). The coordinator learns it
  // from our Ready.
  void choose_role() {
    const TrainConfig& c = ctx_->config;
    if (o_.role == "zo") return;
    ZEROTH_CHECK(o_.device != "cuda" || o_.role == "auto", "--role {} runs on the CPU (the CUDA backend has no "
                 "backward or forward-mode pass yet): join with --device cpu, or --role zo", o_.role);
    if (o_.device == "cuda") {
      fmt::print(stderr, "worker {}: --role auto on the GPU: zeroth-order member\n", name());
      return;
    }
    ZEROTH_CHECK(!c.trainable.full, "--role {}: this run trains full weights (trainable.full), which has no backward "
                 "or forward-mode pass; join with --role zo", o_.role);
    if (o_.role == "grad") role_ = MemberRole::Grad;
    else if (o_.role == "jvp") role_ = MemberRole::Jvp;
    else role_ = choose_auto_role(*ctx_, 0, 1, role_memory_budget(c, 1), fmt::format("worker {}: --role auto", name())).role;
    if (role_ != MemberRole::Zo)
      fmt::print(stderr, "worker {}: {} member: {}, {} slots per step\n", name(), member_role_name(role_),
                 role_ == MemberRole::Grad ? (c.roles.checkpoint ? "checkpointed backward + exact projections"
                                                                 : "backward + exact projections")
                                           : "forward-mode exact projections",
                 slots());
    else if (o_.role == "auto")
      fmt::print(stderr, "worker {}: zeroth-order member\n", name());
  }

  uint32_t slots() const {
    const TrainConfig& c = ctx_->config;
    return uint32_t(role_ != MemberRole::Zo ? c.roles.slots_of_grad(c.zo.q) : c.zo.q);
  }

  // Our records for step s as `member` (ourselves, or a spot check's target)
  // on draw lane `lane`, by our role (launch/roles.h: out of memory, we keep
  // the role's slot count and fill it by ZO differences from then on).
  MemberStepResult member_step(const StepMsg& s, uint32_t member, uint32_t lane) {
    return step_with_fallback(ctx_->config, role_, fallen_back_, fmt::format("worker {}", name()), ctx_->model_of(member),
                              *ctx_->task, replica_->lora(), s.step, member, s.lanes, s.scale, lane);
  }

  void trace_commit(const StepEntry& e, const std::string& hash) {
    if (!trace_) return;
    std::string hex;
    for (const uint8_t b : e.serialize()) hex += fmt::format("{:02x}", b);
    trace_ << fmt::format("commit {} {} {}\n", e.step, hash.empty() ? "-" : hash, hex) << std::flush;
  }

  WorkerOptions o_;
  Endpoint coordinator_;
  Link link_;
  std::string base_hash_;
  std::unique_ptr<TrainContext> ctx_;
  std::unique_ptr<Replica> replica_;
  uint32_t member_ = 0;
  uint64_t theta_from_ = 0;  // θ's step at the end of a snapshot (catch-up traces entries from here)
  bool joining_ = false;  // a Join is on its way; no second one until the Welcome
  MemberRole role_ = MemberRole::Zo;
  bool fallen_back_ = false;  // our gradient or JVP step ran out of memory
  std::string lost_why_;
  std::mt19937_64 lie_rng_{12345};
  std::vector<uint8_t> snapshot_;
  std::ofstream trace_;
};

}  // namespace

Runner add_worker(CLI::App& app) {
  auto opt = std::make_shared<WorkerOptions>();
  auto* sub = app.add_subcommand("worker", "Join an elastic run as a volunteer member (zeroth coordinator ...)");
  sub->add_option("--join", opt->join, "The coordinator's HOST:PORT")->required();
  sub->add_option("--name", opt->name, "A name for this worker in the coordinator's status (printable, <= 64 bytes)");
  sub->add_option("--role", opt->role, "zo: zeroth-order differences; grad: backpropagate and send exact "
                  "projections (roles.grad_slots slots); jvp: the same projections by forward-mode passes (little "
                  "memory); auto: grad where this machine's free memory holds one measured backward step, else jvp "
                  "where a forward-mode pass fits, else zo (default zo)")
      ->check(CLI::IsMember({"zo", "grad", "jvp", "auto"}))
      ->capture_default_str();
  sub->add_option("--device", opt->device, "cpu, or cuda: compute on GPU 0 (LoRA and norm training, role zo; the "
                  "base is uploaded once, packed)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  sub->add_option("--cuda-precision", opt->cuda_precision, "GPU GEMMs: f32 (no TF32), tf32 or bf16 (tensor cores)")
      ->check(CLI::IsMember({"f32", "tf32", "bf16"}))
      ->capture_default_str();
  sub->add_option("--data", opt->data, "Your own training data file (runs with elastic.data: private)");
  sub->add_option("--model", opt->model, "Your copy of the base model (default: the path in the run's config); "
                                         "checked against the run's by hash");
  sub->add_option("--threads", opt->threads, "Compute threads (default: all cores)");
  sub->add_option("--token", opt->token, "Your member token (zt1....), or a file holding it (zeroth token issue)");
  sub->add_option("--secret", opt->secret, "The run secret file (the operator's own workers)");
  sub->add_flag("--tls", opt->tls, "Connect over TLS 1.3 (the coordinator runs with --tls-cert); needs --tls-ca");
  sub->add_option("--tls-ca", opt->tls_ca, "PEM file the coordinator's certificate must verify against: its CA, or "
                                           "the coordinator's own cert.pem (zeroth token tls); the host in --join "
                                           "must be among the certificate's names");
  sub->add_option("--retry-seconds", opt->retry_s, "Keep trying to reach the coordinator this long (default 60)");
  sub->add_option("--trace", opt->trace, "Append every applied entry and θ hash to this file (for audits and tests)");
  sub->add_option("--debug-lie", opt->lie, "Attack suite: falsify (sign-flip) this fraction of our own codes");
  sub->add_option("--set", opt->sets, "Override a key of the run's config locally, e.g. --set eval.batch_tokens=1024");
  return [opt] {
    std::signal(SIGINT, on_leave_signal);
    std::signal(SIGTERM, on_leave_signal);
    ZEROTH_CHECK(opt->device != "cuda" || cuda_available(), "--device cuda: no usable GPU here ({}); join with "
                 "--device cpu", cuda_describe());
    Worker w(*opt);
    return w.run();
  };
}

}  // namespace zeroth::cli
