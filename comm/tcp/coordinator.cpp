#include "comm/tcp/coordinator.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "comm/transport.h"
#include "core/error.h"

namespace zeroth::tcp {
namespace {

constexpr size_t kSnapshotChunk = 1u << 20;
constexpr size_t kEntriesPerFrame = 512;

std::string reason_of(const FrameError& e) {
  switch (e.kind()) {
    case FrameError::Kind::Oversize: return "oversize";
    case FrameError::Kind::UnknownType: return "unknown_type";
    case FrameError::Kind::Malformed: return "malformed";
    case FrameError::Kind::BadTag: return "bad_tag";
    case FrameError::Kind::Tls: return "tls_failed";
  }
  return "malformed";
}

const char* state_name(int s) {
  static const char* names[] = {"catching up", "ready", "active", "evicted"};
  return names[s];
}

}  // namespace

Coordinator::Coordinator(asio::io_context& io, CoordinatorOptions options, RunState& run)
    : io_(io),
      opt_(std::move(options)),
      run_(run),
      acceptor_(io),
      tick_timer_(io),
      deadline_timer_(io),
      next_id_(opt_.first_member_id),
      spot_rng_(opt_.spot_seed) {
  if (opt_.secret) auth_ = std::make_unique<Authenticator>(*opt_.secret);
  ZEROTH_CHECK(opt_.min_workers >= 1 && opt_.min_workers <= opt_.max_workers,
               "elastic.min_workers ({}) must be in 1..elastic.max_workers ({})", opt_.min_workers, opt_.max_workers);
  log = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
}

Coordinator::~Coordinator() = default;

void Coordinator::say(const std::string& line) const {
  if (log) log(line);
}

void Coordinator::start() {
  boost::system::error_code ec;
  acceptor_.open(opt_.listen.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(opt_.listen, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  ZEROTH_CHECK(!ec, "cannot listen on {}:{}: {}", opt_.listen.address().to_string(), opt_.listen.port(), ec.message());
  if (opt_.http) http_ = std::make_unique<HttpStatusServer>(io_, *opt_.http, [this] { return status_json(); });
  run_started_ = Clock::now();
  below_min_since_ = run_started_;
  say(fmt::format("coordinator: listening on {}:{}{}{}; {} of {} steps done; waiting for {}..{} workers",
                  opt_.listen.address().to_string(), port(), opt_.tls ? " (TLS 1.3)" : "",
                  http_ ? fmt::format(", status page http://{}:{}/", opt_.http->address().to_string(), http_port()) : "",
                  run_.steps_done(), opt_.steps, opt_.min_workers, opt_.max_workers));
  accept();
  tick();
  if (run_.steps_done() >= opt_.steps) asio::post(io_, [this] { maybe_begin_step(); });
}

uint16_t Coordinator::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}
uint16_t Coordinator::http_port() const { return http_ ? http_->port() : 0; }

void Coordinator::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (done_) return;
    if (!ec) {
      auto c = opt_.tls ? std::make_shared<Connection>(std::move(socket), opt_.tls, Connection::TlsRole::Server)
                        : std::make_shared<Connection>(std::move(socket));
      Pending& p = unjoined_[c];
      p.since = Clock::now();
      if (auth_) {
        // Before authentication a peer may send one small Hello and nothing
        // else: no frame may make us allocate more than that.
        c->limit_body(max_body_bytes(FrameType::Hello));
        p.nonce = random_nonce();
        c->send(FrameType::Challenge, epoch_, 0, encode(ChallengeMsg{p.nonce}));
      }
      std::weak_ptr<Connection> weak = c;
      c->start([this, weak](const FrameHeader& h, std::vector<uint8_t> body) {
                 if (auto c = weak.lock()) on_frame(c, h, std::move(body));
               },
               [this, weak](const std::string& why, const FrameError* bad) {
                 if (auto c = weak.lock()) on_close(c, why, bad);
               });
    }
    accept();
  });
}

Coordinator::Member* Coordinator::member_of(const Connection* c) {
  auto it = by_conn_.find(c);
  if (it == by_conn_.end()) return nullptr;
  auto m = members_.find(it->second);
  return m == members_.end() ? nullptr : &m->second;
}

bool Coordinator::authed(const std::shared_ptr<Connection>& c) const {
  if (!auth_) return true;
  if (by_conn_.count(c.get())) return true;
  auto it = unjoined_.find(c);
  return it != unjoined_.end() && it->second.authed;
}

void Coordinator::on_hello(const std::shared_ptr<Connection>& c, Pending& p, const std::vector<uint8_t>& body) {
  const HelloMsg hm = decode_hello(body);
  HelloProof h;
  h.kind = CredentialKind(hm.kind);
  h.name = hm.name;
  h.expiry = hm.expiry;
  h.nonce_w = hm.nonce;
  h.proof = hm.proof;
  const uint64_t now = uint64_t(std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count());
  const auto v = auth_->verify(h, p.nonce, now);
  if (!v.key) {
    rejections_.add("auth_failed");
    say(fmt::format("coordinator: refused {} ({}): {}", c->remote(), hm.name, v.why));
    c->send(FrameType::Refused, epoch_, 0, encode(TextMsg{"authentication failed: " + v.why}));
    c->close("authentication failed");
    return;
  }
  c->send(FrameType::HelloOk, epoch_, 0, encode(HelloOkMsg{auth_->hello_ok(*v.key, p.nonce, h.nonce_w)}));
  c->set_keys(auth_->coordinator_keys(*v.key, p.nonce, h.nonce_w));
  c->limit_body(UINT32_MAX);
  p.authed = true;
  p.identity = h.kind == CredentialKind::Secret ? "operator" : h.name;
}

void Coordinator::on_frame(const std::shared_ptr<Connection>& c, const FrameHeader& h, std::vector<uint8_t> body) {
  Member* m = member_of(c.get());
  if (m) m->last_seen = Clock::now();
  if (auth_ && !m) {
    auto it = unjoined_.find(c);
    if (it != unjoined_.end() && !it->second.authed) {
      if (h.type != FrameType::Hello) {
        rejections_.add("unauthenticated");
        c->send(FrameType::Refused, epoch_, 0,
                encode(TextMsg{fmt::format("a {} frame before authentication: this run requires a credential",
                                           frame_type_name(h.type))}));
        c->close("unauthenticated");
        return;
      }
      return on_hello(c, it->second, body);
    }
  }
  switch (h.type) {
    case FrameType::Hello:
      rejections_.add("malformed");  // one handshake per connection
      throw FrameError(FrameError::Kind::Malformed, "a second hello");
    case FrameType::StatusRequest:
      unjoined_.erase(c);
      c->send(FrameType::Status, epoch_, run_.steps_done(), encode(TextMsg{status_json()}));
      c->close("status sent");
      return;
    case FrameType::Join:
      return on_join(c, h, body);
    case FrameType::Heartbeat:
      if (m && m->state == State::Evicted) stale_from_evicted(*m);
      return;
    case FrameType::Ready:
      if (!m || m->state != State::CatchingUp) {
        rejections_.add(m ? "stale_epoch" : "unknown_member");
        return;
      }
      return on_ready(*m, body);
    case FrameType::Result:
      return on_result(m, h, body);
    case FrameType::Leave:
      if (m) {
        const auto why = decode_text(body).text;
        remove(m->id, fmt::format("left ({})", why.empty() ? "no reason given" : why));
      }
      c->close("left");
      return;
    default:
      // A frame only the coordinator sends: this peer does not speak the protocol.
      throw FrameError(FrameError::Kind::Malformed,
                       fmt::format("a worker may not send {} frames", frame_type_name(h.type)));
  }
}

void Coordinator::on_close(const std::shared_ptr<Connection>& c, const std::string& why, const FrameError* bad) {
  unjoined_.erase(c);
  if (bad && !done_) rejections_.add(reason_of(*bad));  // (not the pending connections the run's end closes)
  if (bad && bad->kind() == FrameError::Kind::Tls && !done_) say(fmt::format("coordinator: refused: {}", why));
  if (Member* m = member_of(c.get())) remove(m->id, fmt::format("connection closed: {}", why));
  by_conn_.erase(c.get());
}

void Coordinator::on_join(const std::shared_ptr<Connection>& c, const FrameHeader&, const std::vector<uint8_t>& body) {
  const JoinMsg j = decode_join(body);
  std::string identity;
  if (Member* old = member_of(c.get())) identity = old->identity;
  else if (auto it = unjoined_.find(c); it != unjoined_.end()) identity = it->second.identity;
  unjoined_.erase(c);
  auto refuse = [&](const std::string& why) {
    rejections_.add("refused_join");
    say(fmt::format("coordinator: refused {} ({}): {}", j.name, c->remote(), why));
    c->send(FrameType::Refused, epoch_, 0, encode(TextMsg{why}));
    c->close("refused");
  };
  if (done_) return refuse("the run is complete");
  {
    // Join rate per remote address (its IP), over the last minute.
    const std::string addr = c->remote().substr(0, c->remote().rfind(':'));
    auto& times = joins_by_address_[addr];
    const auto now = Clock::now();
    while (!times.empty() && now - times.front() > std::chrono::minutes(1)) times.erase(times.begin());
    if (times.size() >= opt_.joins_per_minute)
      return refuse(fmt::format("too many joins from {} (more than {} a minute)", addr, opt_.joins_per_minute));
    times.push_back(now);
  }
  if (opt_.max_per_identity > 0 && !identity.empty()) {
    uint32_t held = 0;
    for (const auto& [id, x] : members_)
      held += x.identity == identity && x.state != State::Evicted && x.conn != c;
    if (held >= opt_.max_per_identity)
      return refuse(fmt::format("credential {} already holds {} member(s), the most one credential may hold "
                                "(elastic.max_per_identity)", identity, held));
  }
  if (!j.base_hash.empty() && j.base_hash != opt_.base_hash)
    return refuse(fmt::format("your base model (hash {}) is not the run's (hash {}); load the run's model file",
                              j.base_hash, opt_.base_hash));
  // A member joining again on the same connection (after an eviction) starts anew.
  if (Member* old = member_of(c.get())) {
    members_.erase(old->id);
    by_conn_.erase(c.get());
  }
  // Bound the waiting room: at most max_workers members beside the active ones.
  if (members_.size() >= size_t(2) * opt_.max_workers) return refuse("the run is full; try again later");

  {
    const std::string who = identity.empty() ? "name " + (j.name.empty() ? std::string("?") : j.name) : identity;
    auto st = strikes_.find(who);
    if (opt_.spot_p > 0 && st != strikes_.end() && int(st->second.size()) >= opt_.spot_partners)
      return refuse(fmt::format("{} was evicted for failing spot checks", who));
  }
  Member m;
  m.identity = identity;
  m.id = next_id_++;
  m.name = j.name.empty() ? fmt::format("worker-{}", m.id) : j.name;
  m.backend = j.backend;
  m.conn = c;
  m.last_seen = Clock::now();
  const uint64_t done = run_.steps_done();
  const bool resume = j.steps > 0 && j.steps <= done && !j.theta_hash.empty() && run_.hash_at(j.steps) == j.theta_hash;
  WelcomeMsg w;
  w.member = m.id;
  w.config_yaml = opt_.config_yaml;
  w.base_hash = opt_.base_hash;
  w.ledger_steps = done;
  w.from_step = resume ? j.steps : 0;
  w.reset = !resume;
  c->send(FrameType::Welcome, epoch_, done, encode(w));
  auto& slot = members_[m.id] = std::move(m);
  by_conn_[c.get()] = slot.id;
  say(fmt::format("coordinator: {} joined from {} as member {}; catching up from step {}{}", slot.name, c->remote(),
                  slot.id, w.from_step, resume ? "" : " (from the start)"));
  stream_catch_up(slot, w.from_step, w.reset);
}

void Coordinator::stream_catch_up(Member& m, uint64_t from, bool reset) {
  const uint64_t done = run_.steps_done();
  if (reset && done > 0)
    if (auto snap = run_.snapshot()) {
      const auto& bytes = snap->second;
      for (size_t off = 0; off < bytes.size() || off == 0; off += kSnapshotChunk) {
        CatchUpMsg part;
        part.part = CatchUpPart::Snapshot;
        part.snapshot_step = snap->first;
        part.offset = off;
        part.total = bytes.size();
        const size_t n = std::min(kSnapshotChunk, bytes.size() - off);
        part.bytes.assign(bytes.begin() + ptrdiff_t(off), bytes.begin() + ptrdiff_t(off + n));
        m.conn->send(FrameType::CatchUp, epoch_, snap->first, encode(part));
        if (bytes.empty()) break;
      }
    }
  // Every entry from `from` (from 0 when starting over, even past a snapshot:
  // the codec scale folds in every step's codes; θ skips what the snapshot has).
  for (uint64_t at = from; at < done;) {
    CatchUpMsg part;
    part.part = CatchUpPart::Entries;
    part.entries = run_.entries(at, std::min<uint64_t>(done, at + kEntriesPerFrame));
    auto body = encode(part);
    while (body.size() > max_body_bytes(FrameType::CatchUp) && part.entries.size() > 1) {  // very wide steps
      part.entries.resize(part.entries.size() / 2);
      body = encode(part);
    }
    m.conn->send(FrameType::CatchUp, epoch_, at, body);
    at += part.entries.size();
  }
  CatchUpMsg end;
  end.part = CatchUpPart::End;
  end.snapshot_step = done;
  end.hash = run_.hash_at(done);
  m.conn->send(FrameType::CatchUp, epoch_, done, encode(end));
  m.state = State::CatchingUp;
  m.caught_up_to = done;
}

void Coordinator::on_ready(Member& m, const std::vector<uint8_t>& body) {
  const ReadyMsg r = decode_ready(body);
  const std::string want = run_.hash_at(r.steps);
  if (r.steps != m.caught_up_to || want.empty() || r.theta_hash != want) {
    rejections_.add("hash_mismatch");
    const std::string why = fmt::format("after catching up to step {} your θ hash is {}, the run's is {}", r.steps,
                                        r.theta_hash, want.empty() ? "unknown" : want);
    say(fmt::format("coordinator: {} (member {}) failed its catch-up check: {}", m.name, m.id, why));
    m.conn->send(FrameType::Refused, epoch_, r.steps, encode(TextMsg{why}));
    m.conn->close("refused");
    remove(m.id, "failed its catch-up check");
    return;
  }
  m.state = State::Ready;
  m.role = r.role;
  say(fmt::format("coordinator: {} (member {}, {}) is caught up at step {}; admitted at the next step boundary",
                  m.name, m.id,
                  m.role != MemberRole::Zo ? fmt::format("{} role, {} slots", member_role_name(m.role), opt_.grad_slots)
                                           : std::string("zeroth-order"),
                  r.steps));
  asio::post(io_, [this] { maybe_begin_step(); });
}

void Coordinator::stale_from_evicted(Member& m) {
  // Frames it sent before it heard of its eviction (say, across a stalled
  // link): rejected; tell it again, at most once a second, so it joins anew.
  rejections_.add("stale_epoch");
  const auto now = Clock::now();
  if (now - m.evicted_told > std::chrono::seconds(1)) {
    m.evicted_told = now;
    m.conn->send(FrameType::Evicted, epoch_, step_, encode(TextMsg{"you were evicted; join again"}));
  }
}

void Coordinator::on_result(Member* m, const FrameHeader& h, const std::vector<uint8_t>& body) {
  if (m && m->state == State::Evicted) return stale_from_evicted(*m);
  if (!m) return rejections_.add("unknown_member");
  if (h.epoch != epoch_) return rejections_.add("stale_epoch");
  if (!in_step_ || h.step != step_) return rejections_.add("late");
  if (!std::binary_search(step_members_.begin(), step_members_.end(), m->id)) return rejections_.add("not_caught_up");
  if (results_.count(m->id)) return rejections_.add("malformed");  // a second result for the step
  const ResultMsg r = decode_result(body);
  if (r.member != m->id) return rejections_.add("unknown_member");
  std::vector<Record> recs;
  try {
    recs = decode_member_records(r.records.data(), r.records.size(), step_, m->id);
    const size_t each = member_records_bytes(slots_of(*m), opt_.exact, opt_.curvature);
    ZEROTH_CHECK(r.records.size() == each, "records message of {} bytes, expected {}", r.records.size(), each);
  } catch (const Error& e) {
    rejections_.add("malformed");
    say(fmt::format("coordinator: rejected member {}'s result for step {}: {}", m->id, step_, e.what()));
    return;
  }
  if (step_ % opt_.hash_every == 0) {
    const std::string want = run_.hash_at(step_);
    if (r.theta_hash != want) {
      rejections_.add("hash_mismatch");
      evict(m->id, fmt::format("its θ hash at step {} is {}, the run's is {}", step_, r.theta_hash, want));
      return;
    }
  }
  for (const auto& [target, bytes] : r.checks) {
    const bool asked = std::any_of(step_checks_.begin(), step_checks_.end(),
                                   [&](const SpotCheck& c) { return c.checker == m->id && c.target == target; });
    if (!asked) {
      rejections_.add("malformed");
      continue;
    }
    try {
      check_results_[{m->id, target}] = decode_member_records(bytes.data(), bytes.size(), step_, target);
    } catch (const Error&) {
      rejections_.add("malformed");
    }
  }
  results_[m->id] = std::move(recs);
  losses_[m->id] = {r.loss, r.tokens};
  ++result_frames_;
  result_bytes_ += kFrameHeaderBytes + body.size() + (m->conn->authenticated() ? kTagBytes : 0);
  payload_bytes_ += slots_of(*m) * (opt_.exact ? 4 : 1);
  if (results_.size() == step_members_.size()) finish_step();
}

void Coordinator::evict(uint32_t id, const std::string& why) {
  auto it = members_.find(id);
  if (it == members_.end() || it->second.state == State::Evicted) return;
  Member& m = it->second;
  m.state = State::Evicted;
  m.evicted_told = Clock::now();
  say(fmt::format("coordinator: evicted {} (member {}): {}", m.name, id, why));
  m.conn->send(FrameType::Evicted, epoch_, step_, encode(TextMsg{why}));
  // The connection stays open: frames the member sent before it heard are
  // counted as stale, and it may join again on it.
  if (in_step_ && !results_.count(id) && step_members_.size() > results_.size()) {
    // Nobody waits for it any more.
    size_t still = 0;
    for (const uint32_t x : step_members_)
      if (!results_.count(x) && members_.count(x) && members_.at(x).state == State::Active) ++still;
    if (still == 0) asio::post(io_, [this, s = step_] { if (in_step_ && step_ == s) finish_step(); });
  }
}

void Coordinator::remove(uint32_t id, const std::string& why) {
  auto it = members_.find(id);
  if (it == members_.end()) return;
  say(fmt::format("coordinator: {} (member {}) {}", it->second.name, id, why));
  by_conn_.erase(it->second.conn.get());
  members_.erase(it);
  if (in_step_) {
    size_t still = 0;
    for (const uint32_t x : step_members_)
      if (!results_.count(x) && members_.count(x) && members_.at(x).state == State::Active) ++still;
    if (still == 0) asio::post(io_, [this, s = step_] { if (in_step_ && step_ == s) finish_step(); });
  }
}

void Coordinator::tick() {
  if (done_) return;
  const auto now = Clock::now();
  const auto bound = std::chrono::duration<double>(opt_.heartbeat_s * opt_.missed_heartbeats);
  std::vector<uint32_t> silent;
  for (auto& [id, m] : members_) {
    m.conn->send(FrameType::Heartbeat, epoch_, run_.steps_done(), std::vector<uint8_t>{});
    if (m.state != State::Evicted && now - m.last_seen > bound) silent.push_back(id);
    if (m.state == State::Evicted && now - m.last_seen > 4 * bound) m.conn->close("evicted and silent");
  }
  for (const uint32_t id : silent)
    evict(id, fmt::format("no frame for {:.1f} s (the failure-detection bound)", bound.count()));
  if (auth_ && !opt_.revoked_path.empty()) {
    auth_->set_revoked(read_revoked(opt_.revoked_path));
    std::vector<uint32_t> revoked;
    for (const auto& [id, m] : members_)
      if (auth_->revoked().count(m.identity)) revoked.push_back(id);
    for (const uint32_t id : revoked) {
      auto& m = members_.at(id);
      m.conn->send(FrameType::Refused, epoch_, step_, encode(TextMsg{"your token was revoked"}));
      m.conn->close("revoked");
      remove(id, "was revoked");
    }
  }
  // Closing calls on_close, which erases from unjoined_: collect first.
  std::vector<std::shared_ptr<Connection>> expired;
  for (const auto& [c, p] : unjoined_)
    if (now - p.since > std::chrono::duration<double>(opt_.join_timeout_s)) expired.push_back(c);
  for (const auto& c : expired) {
    c->close("no join in time", false);
    unjoined_.erase(c);
  }
  if (!in_step_) maybe_begin_step();
  tick_timer_.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.heartbeat_s)));
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

void Coordinator::maybe_begin_step() {
  if (done_ || in_step_) return;
  if (run_.steps_done() >= opt_.steps) return finish_run("");
  // Drop evicted members that left; admit caught-up ones, lowest ids first.
  std::vector<uint32_t> active;
  for (const auto& [id, m] : members_)
    if (m.state == State::Active) active.push_back(id);
  for (auto& [id, m] : members_)
    if (m.state == State::Ready && active.size() < opt_.max_workers) {
      m.state = State::Active;
      active.push_back(id);
    }
  std::sort(active.begin(), active.end());
  if (active.size() < opt_.min_workers) {
    if (!waiting_) {
      waiting_ = true;
      below_min_since_ = Clock::now();
      say(fmt::format("coordinator: {} active worker(s), {} needed; waiting (up to {:.0f} s)", active.size(),
                      opt_.min_workers, opt_.wait_s));
    } else if (Clock::now() - below_min_since_ > std::chrono::duration<double>(opt_.wait_s)) {
      finish_run(fmt::format("fewer than elastic.min_workers = {} workers for {:.0f} s (elastic.wait_s); {} "
                             "active at step {}. Start more workers (zeroth worker --join ...) and restart the "
                             "coordinator on the same run directory to continue.",
                             opt_.min_workers, opt_.wait_s, active.size(), run_.steps_done()));
    }
    return;
  }
  waiting_ = false;
  if (active != last_active_) {
    if (!last_active_.empty() || run_.steps_done() > 0) ++epoch_;
    last_active_ = active;
    say(fmt::format("coordinator: epoch {}: {} member(s) from step {}", epoch_, active.size(), run_.steps_done()));
  }
  in_step_ = true;
  step_ = run_.steps_done();
  step_members_ = active;
  results_.clear();
  losses_.clear();
  step_started_ = Clock::now();
  StepMsg s;
  s.step = step_;
  s.scale = run_.scale();
  s.lr = run_.lr(step_);
  s.members = active;
  s.lanes = opt_.max_workers;
  step_checks_.clear();
  check_results_.clear();
  if (opt_.spot_p > 0 && active.size() >= 2) {
    // A checker recomputes its target's records its own way, so checker and
    // target share a role (a gradient member's slots are not a ZO member's).
    std::uniform_real_distribution<double> u(0, 1);
    for (size_t i = 0; i < active.size(); ++i)
      if (u(spot_rng_) < opt_.spot_p) {
        const MemberRole role = members_.at(active[i]).role;
        std::vector<uint32_t> peers;
        for (size_t j = 0; j < active.size(); ++j)
          if (j != i && members_.at(active[j]).role == role) peers.push_back(active[j]);
        if (peers.empty()) continue;
        step_checks_.push_back({peers[size_t(spot_rng_() % peers.size())], active[i], uint32_t(i)});
      }
    s.checks = step_checks_;
  }
  const auto body = encode(s);
  for (const uint32_t id : active) members_.at(id).conn->send(FrameType::Step, epoch_, step_, body);
  deadline_timer_.expires_after(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.step_deadline_s)));
  deadline_timer_.async_wait([this, s = step_](boost::system::error_code ec) {
    if (ec || !in_step_ || step_ != s) return;
    std::string missing;
    for (const uint32_t id : step_members_)
      if (!results_.count(id)) missing += fmt::format("{}{}", missing.empty() ? "" : ", ", id);
    say(fmt::format("coordinator: step {} deadline passed; left out member(s) {}", s, missing));
    finish_step();
  });
}

std::string backend_pair(const std::string& a, const std::string& b) {
  return a == b ? a : a < b ? a + "|" + b : b + "|" + a;
}

int spot_tolerance_for(const CoordinatorOptions& o, const std::string& a, const std::string& b) {
  const auto it = o.spot_tolerances.find(backend_pair(a, b));
  return it == o.spot_tolerances.end() ? o.spot_tolerance : it->second;
}

void Coordinator::run_spot_checks() {
  std::set<uint32_t> evict_now;
  auto backend_of = [&](uint32_t id) {
    const auto it = members_.find(id);
    return it == members_.end() ? std::string() : it->second.backend;
  };
  for (const auto& c : step_checks_) {
    auto mine = results_.find(c.target);
    auto theirs = check_results_.find({c.checker, c.target});
    if (mine == results_.end() || theirs == check_results_.end()) continue;  // one of them did not deliver
    ++spot_checks_;
    const std::string bt = backend_of(c.target), bc = backend_of(c.checker);
    const int tolerance = spot_tolerance_for(opt_, bt, bc);
    PairStats& pair = spot_pairs_[backend_pair(bt, bc)];
    ++pair.checks;
    std::map<uint32_t, int> a, b;
    for (const auto& r : mine->second) a[r.slot] = int(int8_t(r.code));
    for (const auto& r : theirs->second) b[r.slot] = int(int8_t(r.code));
    bool agree = a.size() == b.size();
    for (const auto& [slot, code] : a) {
      auto it = b.find(slot);
      if (it == b.end()) {
        agree = false;
        continue;
      }
      const int diff = std::abs(it->second - code);
      pair.max_diff = std::max(pair.max_diff, diff);
      agree = agree && diff <= tolerance;
    }
    if (agree) continue;
    ++pair.disagreements;
    ++spot_disagreements_;
    const std::string t = identity_of(c.target), k = identity_of(c.checker);
    strikes_[t].insert(k);
    strikes_[k].insert(t);
    for (const auto& [id, who] : {std::pair{c.target, t}, std::pair{c.checker, k}})
      if (int(strikes_[who].size()) >= opt_.spot_partners) evict_now.insert(id);
  }
  for (const uint32_t id : evict_now) {
    // Its records of this step stay out of the ledger.
    results_.erase(id);
    if (members_.count(id)) {
      ++spot_evictions_;
      rejections_.add("spot_check");
      const std::string who = identity_of(id);
      std::string with;
      for (const auto& p : strikes_[who]) with += fmt::format("{}{}", with.empty() ? "" : ", ", p);
      evict(id, fmt::format("its records disagreed with spot checks by {} different members ({})",
                            strikes_[who].size(), with));
      members_.at(id).conn->close("failed spot checks");
    }
  }
}

std::string Coordinator::identity_of(uint32_t member) const {
  auto it = members_.find(member);
  if (it == members_.end()) return fmt::format("member {}", member);
  return it->second.identity.empty() ? "name " + it->second.name : it->second.identity;
}

void Coordinator::finish_step() {
  if (!in_step_) return;
  deadline_timer_.cancel();
  if (results_.empty()) {  // nobody delivered: run the step again with whoever is left
    in_step_ = false;
    last_active_.clear();
    asio::post(io_, [this] { maybe_begin_step(); });
    return;
  }
  run_spot_checks();
  StepEntry e;
  e.step = step_;
  e.epoch = uint32_t(epoch_);
  e.scale = run_.scale();
  e.lr = run_.lr(step_);
  e.exact = opt_.exact;
  for (auto& [id, recs] : results_) {
    e.records.insert(e.records.end(), recs.begin(), recs.end());
    if (auto it = members_.find(id); it != members_.end()) ++it->second.contributed;
  }
  e.sort_records();
  const RunState::Filtered filtered = run_.filter(e);
  screened_ += uint64_t(filtered.screened);
  robust_clipped_ += uint64_t(filtered.clipped);
  robust_trimmed_ += uint64_t(filtered.trimmed);
  try {
    run_.commit(e);  // durable before any member hears of it
  } catch (const std::exception& ex) {
    return finish_run(fmt::format("cannot commit step {}: {}", step_, ex.what()));
  }
  const auto body = encode(CommitMsg{e});
  for (auto& [id, m] : members_)
    if (m.state != State::Evicted) m.conn->send(FrameType::Commit, epoch_, step_, body);
  double loss = 0;
  for (const auto& [id, l] : losses_) loss += l.first / double(losses_.size());
  loss_curve_.emplace_back(step_, loss);
  if (loss_curve_.size() > 2000) loss_curve_.erase(loss_curve_.begin(), loss_curve_.begin() + 1000);
  last_step_s_ = std::chrono::duration<double>(Clock::now() - step_started_).count();
  ++steps_run_;
  in_step_ = false;
  if ((step_ + 1) % 10 == 0 || step_ + 1 == opt_.steps)
    say(fmt::format("coordinator: step {}/{} loss {:.4f}, {} member(s), epoch {}, {:.2f} s/step", step_ + 1,
                    opt_.steps, loss, results_.size(), epoch_, last_step_s_));
  asio::post(io_, [this] { maybe_begin_step(); });
}

void Coordinator::finish_run(const std::string& failure) {
  if (done_) return;
  done_ = true;
  failure_ = failure;
  const std::string why = failure.empty() ? "the run is complete" : "the coordinator stopped: " + failure;
  for (auto& [id, m] : members_) {
    m.conn->send(FrameType::Leave, epoch_, run_.steps_done(), encode(TextMsg{why}));
    m.conn->close("run over");
  }
  auto unjoined = std::move(unjoined_);  // closing calls on_close, which erases from unjoined_
  unjoined_.clear();
  for (auto& [c, t] : unjoined) c->close("run over", false);
  boost::system::error_code ec;
  acceptor_.close(ec);
  tick_timer_.cancel();
  deadline_timer_.cancel();
  if (http_) http_->stop();
  say(failure.empty() ? fmt::format("coordinator: run complete at step {}", run_.steps_done())
                      : "coordinator: " + failure);
  if (on_done) asio::post(io_, on_done);
}

std::string Coordinator::status_json() const {
  using nlohmann::json;
  const auto now = Clock::now();
  json members = json::array();
  for (const auto& [id, m] : members_)
    members.push_back({{"id", id},
                       {"name", m.name},
                       {"backend", m.backend},
                       {"role", member_role_name(m.role)},
                       {"address", m.conn ? m.conn->remote() : ""},
                       {"state", state_name(int(m.state))},
                       {"last_seen_ms", int64_t(std::chrono::duration<double, std::milli>(now - m.last_seen).count())},
                       {"steps_contributed", m.contributed}});
  const double elapsed = std::chrono::duration<double>(now - run_started_).count();
  json pairs = json::object();
  for (const auto& [name, p] : spot_pairs_)
    pairs[name] = {{"checks", p.checks},
                   {"disagreements", p.disagreements},
                   {"max_code_difference", p.max_diff},
                   {"tolerance", opt_.spot_tolerances.count(name) ? opt_.spot_tolerances.at(name) : opt_.spot_tolerance}};
  json j = {{"run", opt_.run_name},
            {"step", run_.steps_done()},
            {"steps", opt_.steps},
            {"epoch", epoch_},
            {"members", members},
            {"min_workers", opt_.min_workers},
            {"max_workers", opt_.max_workers},
            {"steps_per_second", elapsed > 0 ? double(steps_run_) / elapsed : 0.0},
            {"last_step_seconds", last_step_s_},
            {"loss", loss_curve_.empty() ? json(nullptr) : json(loss_curve_.back().second)},
            {"bytes_per_member_per_step", result_frames_ ? double(result_bytes_) / double(result_frames_) : 0.0},
            {"payload_bytes_per_member_per_step", result_frames_ ? double(payload_bytes_) / double(result_frames_) : 0.0},
            {"rejections", rejections_.by_reason}, {"tls", opt_.tls != nullptr},
            {"robust", {{"rule", run_.filter_rule()}, {"clipped", robust_clipped_}, {"trimmed", robust_trimmed_},
                        {"screened", screened_}}},
            {"spot_checks", {{"p", opt_.spot_p}, {"checks", spot_checks_}, {"disagreements", spot_disagreements_},
                             {"evictions", spot_evictions_}, {"by_backends", pairs}}},
            {"done", done_},
            {"failure", failure_}};
  json curve = json::array();
  for (const auto& [s, l] : loss_curve_) curve.push_back({s, l});
  j["loss_curve"] = curve;
  return j.dump();
}

}  // namespace zeroth::tcp
