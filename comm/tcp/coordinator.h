// The elastic coordinator: volunteers (workers) join and leave over TCP while
// a run goes on; every committed step is durable before anyone hears of it.
//
// Protocol, per step t (frames in comm/tcp/frame.h):
//   boundary: members that caught up (Ready, hash verified) are admitted, up to
//             max_workers; any change of the active set starts a new epoch.
//             Below min_workers the coordinator waits (up to wait_s, then fails).
//   Step:     to the active members (t, epoch, codec scale, lr, the member list,
//             whose positions are the samples' draw lanes).
//   Result:   each member's records; checked for epoch, step, membership, form,
//             and every hash_every steps the member's θ hash against ours.
//             Results after the step deadline are rejected ("late").
//   Commit:   the entry of the results that came in, appended to the ledger and
//             made durable (RunState::commit) BEFORE it is sent to any member.
//
// Joining: Join → Welcome (member id, the run's config, where catch-up starts)
// → CatchUp frames (a snapshot in chunks when the worker starts over, then
// ledger entries, then End with the coordinator's hash) → the worker replays
// and answers Ready with its hash; no record from it is accepted before that
// hash matches. Commits reach catching-up members too, in order, so they stay
// current while they wait for the next boundary.
//
// Failure detection: heartbeats both ways every heartbeat_s; a member silent
// for missed_heartbeats of them is evicted (told so; a new epoch starts; its
// later frames count as stale). A member that misses a step's deadline is left
// out of that step only.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "comm/tcp/connection.h"
#include "comm/tcp/http_status.h"
#include "optim/ledger.h"

namespace zeroth::tcp {

struct CoordinatorOptions {
  tcp::endpoint listen;
  std::optional<tcp::endpoint> http;  // the read-only status page
  std::string run_name;
  uint32_t min_workers = 1, max_workers = 16;
  double heartbeat_s = 1.0;
  int missed_heartbeats = 5;      // failure-detection bound: heartbeat_s × missed_heartbeats
  double step_deadline_s = 60;    // a step waits at most this long for results
  double wait_s = 600;            // below min_workers, fail after waiting this long
  double join_timeout_s = 10;     // a connection must say Join (or ask for status) within this
  uint64_t steps = 100;           // the run's length
  uint32_t hash_every = 10;
  uint32_t slots = 1;             // records per member per step (zo.q)
  uint32_t grad_slots = 1;        // records per gradient or JVP member (ReadyMsg::role) per step (roles.grad_slots)
  bool exact = false;
  bool curvature = false;  // records carry HiZOO's curvature block (optimizer.rule hizoo)
  std::string base_hash, config_yaml;
  uint32_t first_member_id = 0;   // ids never reused within a ledger
  // Authentication (comm/tcp/auth.h): with a secret, every connection must
  // complete the challenge-response before anything else, and every later frame
  // is tagged. Without one the run is open (trusted networks only).
  std::optional<Key> secret;
  // TLS (comm/tcp/tls.h): with a context, every connection's TLS handshake
  // must end within join_timeout_s, before anything else; the handshake above
  // then runs inside TLS unchanged.
  std::shared_ptr<ssl::context> tls;
  std::string revoked_path;       // revocation list, re-read every tick
  uint32_t max_per_identity = 0;  // members one credential may hold at once (0 = no cap)
  uint32_t joins_per_minute = 60; // per remote address
  // Spot checks: each step, each active member is checked with probability
  // spot_p: another member recomputes its records; codes further apart than
  // spot_tolerance (or a slot dropped by one only) are a strike for both. A
  // member with strikes against spot_partners distinct partners is evicted
  // (an honest member disagrees only with liars).
  // The tolerance depends on the two members' backend classes (JoinMsg::backend):
  // spot_tolerances["A"] for two members of class A, ["A|B"] (either order) for
  // a mixed pair, spot_tolerance for any pair not listed. `zeroth calibrate`
  // measures them.
  double spot_p = 0;
  int spot_tolerance = 1;
  std::map<std::string, int> spot_tolerances;
  int spot_partners = 2;
  uint64_t spot_seed = 1;
};

// The spot-check tolerance for members of backend classes a and b (see
// CoordinatorOptions::spot_tolerances); the pair's name is "a" or "a|b" sorted.
std::string backend_pair(const std::string& a, const std::string& b);
int spot_tolerance_for(const CoordinatorOptions& o, const std::string& a, const std::string& b);

// What the coordinator needs of the run (launch/ implements it on the ledger).
class RunState {
 public:
  virtual ~RunState() = default;
  virtual uint64_t steps_done() const = 0;
  virtual std::string hash_at(uint64_t steps) const = 0;  // θ's hash after `steps` entries; "" if not kept
  virtual float scale() const = 0;                        // codec scale for the next step
  virtual float lr(uint64_t step) const = 0;
  // What the ledger will hold of a gathered entry (the run's screening and
  // robust aggregation: a policy of the run's replica, not of the transport).
  // Changes only `entry`; the counts are for the status page.
  struct Filtered {
    int64_t clipped = 0, trimmed = 0, screened = 0;
  };
  virtual Filtered filter(StepEntry& entry) = 0;
  virtual std::string filter_rule() const = 0;            // "none", "clip", ... for the status page
  virtual void commit(const StepEntry& entry) = 0;        // durable append, then apply
  virtual std::vector<StepEntry> entries(uint64_t from, uint64_t to) const = 0;
  // The newest snapshot file usable to start a worker over: (step, bytes).
  virtual std::optional<std::pair<uint64_t, std::vector<uint8_t>>> snapshot() const = 0;
};

struct RejectionCounters {
  std::map<std::string, uint64_t> by_reason;  // stale_epoch, late, oversize, malformed, unknown_type,
                                              // unknown_member, hash_mismatch, not_caught_up, refused_join
  void add(const std::string& reason) { ++by_reason[reason]; }
  uint64_t operator[](const std::string& reason) const {
    auto it = by_reason.find(reason);
    return it == by_reason.end() ? 0 : it->second;
  }
};

class Coordinator {
 public:
  Coordinator(asio::io_context& io, CoordinatorOptions options, RunState& run);
  ~Coordinator();
  // Starts listening; the run proceeds on `io` (run it) until it ends. Then
  // io.run() returns; failure() says why if it failed.
  void start();
  uint16_t port() const;
  uint16_t http_port() const;
  const std::string& failure() const { return failure_; }
  bool done() const { return done_; }
  std::string status_json() const;
  const RejectionCounters& rejections() const { return rejections_; }
  uint64_t epoch() const { return epoch_; }
  // Progress lines (joins, evictions, steps); default: stderr.
  std::function<void(const std::string&)> log;
  // Called (on the loop) once the run has ended, to release what else keeps
  // the loop alive (signal handlers).
  std::function<void()> on_done;

 private:
  enum class State { CatchingUp, Ready, Active, Evicted };
  struct Member {
    uint32_t id = 0;
    std::string name;
    std::shared_ptr<Connection> conn;
    State state = State::CatchingUp;
    uint64_t caught_up_to = 0;  // End's step
    std::chrono::steady_clock::time_point last_seen;
    uint64_t contributed = 0;
    std::chrono::steady_clock::time_point evicted_told;
    std::string identity;  // the credential's name ("" in an open run)
    std::string backend;   // its backend class (JoinMsg::backend)
    MemberRole role = MemberRole::Zo;  // its role (ReadyMsg::role)
  };
  uint32_t slots_of(const Member& m) const { return m.role != MemberRole::Zo ? opt_.grad_slots : opt_.slots; }
  // A connection that has not joined yet: its challenge and handshake state.
  struct Pending {
    std::chrono::steady_clock::time_point since;
    Nonce nonce{};
    bool authed = false;
    std::string identity;
  };
  using Clock = std::chrono::steady_clock;

  void accept();
  void on_frame(const std::shared_ptr<Connection>& c, const FrameHeader& h, std::vector<uint8_t> body);
  void on_close(const std::shared_ptr<Connection>& c, const std::string& why, const FrameError* bad);
  void on_join(const std::shared_ptr<Connection>& c, const FrameHeader& h, const std::vector<uint8_t>& body);
  void on_ready(Member& m, const std::vector<uint8_t>& body);
  void on_result(Member* m, const FrameHeader& h, const std::vector<uint8_t>& body);
  void stream_catch_up(Member& m, uint64_t from, bool reset);
  void evict(uint32_t id, const std::string& why);
  void stale_from_evicted(Member& m);
  void remove(uint32_t id, const std::string& why);
  void tick();             // heartbeats, failure detection, join timeouts
  void maybe_begin_step();
  void finish_step();
  void finish_run(const std::string& failure);
  void say(const std::string& line) const;
  Member* member_of(const Connection* c);

  asio::io_context& io_;
  CoordinatorOptions opt_;
  RunState& run_;
  tcp::acceptor acceptor_;
  asio::steady_timer tick_timer_, deadline_timer_;
  std::unique_ptr<HttpStatusServer> http_;
  std::map<uint32_t, Member> members_;
  std::map<const Connection*, uint32_t> by_conn_;
  std::map<std::shared_ptr<Connection>, Pending> unjoined_;
  std::unique_ptr<Authenticator> auth_;
  std::map<std::string, std::vector<Clock::time_point>> joins_by_address_;
  void on_hello(const std::shared_ptr<Connection>& c, Pending& p, const std::vector<uint8_t>& body);
  bool authed(const std::shared_ptr<Connection>& c) const;
  uint32_t next_id_;
  uint64_t epoch_ = 1;
  std::vector<uint32_t> last_active_;  // the active set of the last step (epoch changes when it changes)
  // The step in flight.
  bool in_step_ = false;
  uint64_t step_ = 0;
  std::vector<uint32_t> step_members_;
  std::map<uint32_t, std::vector<Record>> results_;
  std::map<uint32_t, std::pair<double, int64_t>> losses_;
  std::vector<SpotCheck> step_checks_;
  std::map<std::pair<uint32_t, uint32_t>, std::vector<Record>> check_results_;  // (checker, target) → records
  // Strikes by identity (the credential's name, or the self-chosen name in an
  // open run): a liar that rejoins under a new member id keeps its strikes, and
  // an honest member's disagreements all point at the same liar.
  std::map<std::string, std::set<std::string>> strikes_;
  std::string identity_of(uint32_t member) const;
  uint64_t spot_checks_ = 0, spot_disagreements_ = 0, spot_evictions_ = 0;
  struct PairStats {
    uint64_t checks = 0, disagreements = 0;
    int max_diff = 0;  // the largest |code difference| seen (both slots present)
  };
  std::map<std::string, PairStats> spot_pairs_;  // by backend_pair()
  std::mt19937_64 spot_rng_;
  void run_spot_checks();
  Clock::time_point step_started_, run_started_, below_min_since_;
  bool waiting_ = false;
  bool done_ = false;
  std::string failure_;
  RejectionCounters rejections_;
  // Figures for status.
  uint64_t steps_run_ = 0, result_frames_ = 0, result_bytes_ = 0, payload_bytes_ = 0;
  uint64_t robust_clipped_ = 0, robust_trimmed_ = 0, screened_ = 0;
  std::vector<std::pair<uint64_t, double>> loss_curve_;
  double last_step_s_ = 0;
};

}  // namespace zeroth::tcp
