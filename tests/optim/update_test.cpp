// Update rules: each rule matches a naive implementation of update.h's float
// formulas bit for bit, replay equals one-by-one application, threads do not
// matter, and the rules actually descend a quadratic through the codec.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "optim/update.h"
#include "tests/core/cuda_test_util.h"
#include "tests/optim/update_test_util.h"

namespace zeroth {
namespace {

constexpr UpdateRule kRules[] = {UpdateRule::Sgd, UpdateRule::Momentum, UpdateRule::Sign};

// θ as one vector; the set cuts it into tensors of odd sizes, one spanning
// several replay chunks (kReplayChunk = 16384).
struct Theta {
  std::vector<float> v;
  TrainableSet set;
  explicit Theta(unsigned seed) {
    const int64_t sizes[] = {3001, 17, 40000, 129};
    int64_t n = 0;
    for (int64_t s : sizes) n += s;
    v.resize(size_t(n));
    std::mt19937 rng(seed);
    std::normal_distribution<float> w(0.0f, 0.05f);
    for (float& x : v) x = w(rng);
    int64_t at = 0;
    for (size_t t = 0; t < 4; ++t) {
      std::string name = "t";
      name += char('0' + t);
      set.add(name, {sizes[t]}, v.data() + at);
      at += sizes[t];
    }
  }
};

std::vector<StepEntry> make_entries(int count, uint64_t first_step, unsigned seed) {
  return test::random_entries(count, first_step, seed, 0, 20, 4);
}

// update.h's formulas written out per element, z from the scalar reference.
void naive_apply(const OptimizerConfig& cfg, const StepEntry& e, std::vector<float>& th, std::vector<float>& m) {
  const int64_t n = int64_t(th.size());
  const float decay = 1.0f - e.lr * cfg.weight_decay;
  if (e.records.empty()) {
    for (float& x : th) x = x * decay;
    return;
  }
  std::vector<float> acc(th.size(), 0.0f), z(th.size());
  const float count = float(e.records.size());
  for (const Record& r : e.records) {
    const float g = float(int8_t(r.code)) * e.scale;
    const float q = g / count;
    const float c = cfg.rule == UpdateRule::Sgd ? e.lr * q : -q;
    generate_z_reference({cfg.run_seed, uint32_t(e.step), r.member, r.slot}, cfg.distribution, 0, n, z.data());
    for (int64_t i = 0; i < n; ++i) acc[i] = acc[i] + c * z[i];
  }
  for (int64_t i = 0; i < n; ++i) {
    if (cfg.rule == UpdateRule::Sgd) {
      th[i] = th[i] * decay - acc[i];
    } else if (cfg.rule == UpdateRule::Momentum) {
      m[i] = m[i] * cfg.momentum - acc[i];
      th[i] = th[i] * decay - e.lr * m[i];
    } else {
      const float a = 0.0f - acc[i];
      th[i] = th[i] * decay - e.lr * (a > 0 ? 1.0f : (a < 0 ? -1.0f : 0.0f));
    }
  }
}

OptimizerConfig config(UpdateRule rule, Distribution d = Distribution::Rademacher) {
  OptimizerConfig c;
  c.rule = rule;
  c.weight_decay = 0.1f;
  c.momentum = 0.9f;
  c.distribution = d;
  c.run_seed = 0xfeedbeefcafeull;
  return c;
}

using test::bit_mismatches;

TEST(ZerothOrderOptimizer, EveryRuleMatchesNaiveBitExact) {
  const auto entries = make_entries(12, 0, 1);
  for (UpdateRule rule : kRules)
    for (Distribution d : {Distribution::Rademacher, Distribution::Gaussian}) {
      const OptimizerConfig cfg = config(rule, d);
      Theta t(2);
      std::vector<float> th = t.v, m(th.size(), 0.0f);
      ZerothOrderOptimizer opt(cfg, t.set, 2);
      for (const StepEntry& e : entries) {
        opt.apply(e);
        naive_apply(cfg, e, th, m);
        ASSERT_EQ(bit_mismatches(t.v, th), 0) << update_rule_name(rule) << " " << distribution_name(d) << " step "
                                              << e.step;
      }
      if (rule == UpdateRule::Momentum) {
        EXPECT_EQ(bit_mismatches(opt.momentum_buffer(), m), 0);
      }
      EXPECT_GT(bit_mismatches(t.v, Theta(2).v), int64_t(t.v.size() / 2)) << "θ must have moved";
    }
}

// key_group r (zo.redundancy): a record of member m moves θ along the z of the
// first member of its group, exactly as that member's record would.
TEST(ZerothOrderOptimizer, KeyGroupsApplyTheGroupsDirection) {
  StepEntry grouped;
  grouped.step = 4;
  grouped.scale = 2e-3f;
  grouped.lr = 1e-2f;
  grouped.records = {{4, 0, uint8_t(int8_t(9)), RecordKind::ZerothOrder}, {5, 1, uint8_t(int8_t(-20)), RecordKind::ZerothOrder}};
  StepEntry owners = grouped;
  owners.records[0].member = 3;
  owners.records[1].member = 3;
  OptimizerConfig g = config(UpdateRule::Sgd), solo = g;
  g.key_group = 3;
  Theta a(5), b(5), c(5);
  ZerothOrderOptimizer(g, a.set, 2).apply(grouped);
  ZerothOrderOptimizer(solo, b.set, 2).apply(owners);
  ZerothOrderOptimizer(solo, c.set, 2).apply(grouped);
  EXPECT_EQ(bit_mismatches(a.v, b.v), 0);
  EXPECT_GT(bit_mismatches(a.v, c.v), int64_t(a.v.size() / 2));  // members 4 and 5's own z differ
}

TEST(ZerothOrderOptimizer, ReplayEqualsOneByOneAndThreadsDoNotMatter) {
  const auto entries = make_entries(50, 100, 3);
  for (UpdateRule rule : kRules) {
    const OptimizerConfig cfg = config(rule);
    Theta one(4), fused(4), halves(4), single(4);
    ZerothOrderOptimizer o1(cfg, one.set, 2), of(cfg, fused.set, 2), oh(cfg, halves.set, 1), os(cfg, single.set, 1);
    for (const StepEntry& e : entries) o1.apply(e);
    of.replay(entries);
    oh.replay(std::span(entries).first(17));
    oh.replay(std::span(entries).subspan(17));
    for (const StepEntry& e : entries) os.apply(e);
    EXPECT_EQ(bit_mismatches(one.v, fused.v), 0) << update_rule_name(rule);
    EXPECT_EQ(bit_mismatches(one.v, halves.v), 0) << update_rule_name(rule);
    EXPECT_EQ(bit_mismatches(one.v, single.v), 0) << update_rule_name(rule) << ": 1 vs 2 threads";
    EXPECT_EQ(one.set.hash(), fused.set.hash());
    if (rule == UpdateRule::Momentum) {
      EXPECT_EQ(bit_mismatches(o1.momentum_buffer(), of.momentum_buffer()), 0);
    }
  }
}

TEST(ZerothOrderOptimizer, EmptyEntryOnlyDecays) {
  for (UpdateRule rule : kRules) {
    Theta t(5);
    const std::vector<float> before = t.v;
    OptimizerConfig cfg = config(rule);
    cfg.weight_decay = 0.5f;
    ZerothOrderOptimizer opt(cfg, t.set);
    StepEntry e;
    e.step = 0;
    e.lr = 0.1f;
    e.scale = 1.0f;
    opt.apply(e);
    const float decay = 1.0f - 0.1f * 0.5f;
    for (size_t i = 0; i < before.size(); ++i) ASSERT_EQ(t.v[i], before[i] * decay);
    if (rule == UpdateRule::Momentum) {
      for (float x : opt.momentum_buffer()) ASSERT_EQ(x, 0.0f);
    }
    cfg.weight_decay = 0.0f;
    ZerothOrderOptimizer plain(cfg, t.set);
    const std::vector<float> kept = t.v;
    plain.apply(e);
    EXPECT_EQ(bit_mismatches(t.v, kept), 0);
  }
}

TEST(ZerothOrderOptimizer, BadEntriesLeaveThetaUntouched) {
  Theta t(6);
  const std::vector<float> before = t.v;
  ZerothOrderOptimizer opt(config(UpdateRule::Sgd), t.set);
  auto entries = make_entries(3, 0, 7);
  entries[2].records.push_back({9, 9, 0x80, RecordKind::ZerothOrder});
  EXPECT_THROW(opt.replay(entries), Error);
  StepEntry far = make_entries(1, uint64_t(1) << 32, 8)[0];
  EXPECT_THROW(opt.apply(far), Error);
  EXPECT_EQ(bit_mismatches(t.v, before), 0);
  ZerothOrderOptimizer mom(config(UpdateRule::Momentum), t.set);
  EXPECT_THROW(mom.load_momentum(std::vector<float>(3)), Error);
  EXPECT_THROW(opt.load_momentum(std::vector<float>(before.size())), Error);
}

TEST(OptimizerConfig, LrSchedules) {
  OptimizerConfig c;
  c.lr = 0.1f;
  const double L = double(c.lr);  // the schedule works in double from the float lr
  EXPECT_EQ(c.lr_at(0), 0.1f);
  EXPECT_EQ(c.lr_at(1000000), 0.1f);
  c.warmup_steps = 10;
  EXPECT_EQ(c.lr_at(0), float(L * 1 / 10));
  EXPECT_EQ(c.lr_at(4), float(L * 5 / 10));
  EXPECT_EQ(c.lr_at(9), 0.1f);
  EXPECT_EQ(c.lr_at(10), 0.1f);
  c.schedule = LrSchedule::Linear;
  c.total_steps = 110;
  EXPECT_EQ(c.lr_at(10), 0.1f);
  EXPECT_EQ(c.lr_at(60), float(L * 0.5));
  EXPECT_EQ(c.lr_at(85), float(L * 0.25));
  EXPECT_EQ(c.lr_at(110), 0.0f);
  EXPECT_EQ(c.lr_at(500), 0.0f);
  c.schedule = LrSchedule::Cosine;
  EXPECT_EQ(c.lr_at(10), 0.1f);
  EXPECT_FLOAT_EQ(c.lr_at(60), float(L * 0.5));
  EXPECT_EQ(c.lr_at(35), float(L * 0.5 * (1 + std::cos(M_PI / 4))));
  EXPECT_EQ(c.lr_at(110), 0.0f);
  EXPECT_NO_THROW(c.validate());
  c.total_steps = 10;  // not past warmup
  EXPECT_THROW(c.validate(), Error);
  c = {};
  c.momentum = 1.0f;
  EXPECT_THROW(c.validate(), Error);
  c = {};
  c.lr = -1;
  EXPECT_THROW(c.validate(), Error);
}

// End to end on L(θ) = ½|θ − θ*|²: g_k = <θ − θ*, z_k> is the exact projected
// gradient, encoded with the codec at the ledger-derived scale. Every rule must
// descend (a sign error in any coefficient would make the loss grow).
TEST(ZerothOrderOptimizer, DescendsAQuadraticThroughTheCodec) {
  constexpr int64_t d = 100;
  for (UpdateRule rule : kRules) {
    std::vector<float> th(d, 0.0f), target(d);
    for (int64_t i = 0; i < d; ++i) target[i] = 0.5f * std::sin(float(i));
    TrainableSet set;
    set.add("w", {d}, th.data());
    OptimizerConfig cfg = config(rule);
    cfg.weight_decay = 0;
    cfg.lr = rule == UpdateRule::Sign ? 2e-3f : (rule == UpdateRule::Momentum ? 2e-3f : 2e-2f);
    ZerothOrderOptimizer opt(cfg, set, 1);
    CodecScale scale(CodecConfig{});
    auto loss = [&] {
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += 0.5 * double(th[i] - target[i]) * double(th[i] - target[i]);
      return s;
    };
    const double start = loss();
    std::vector<float> z(d);
    for (uint32_t step = 0; step < 1500; ++step) {
      StepEntry e;
      e.step = step;
      e.lr = cfg.lr_at(step);
      e.scale = scale.scale();
      std::vector<uint8_t> codes;
      for (uint32_t slot = 0; slot < 4; ++slot) {
        const PerturbationKey key{cfg.run_seed, step, 0, slot};
        generate_z(key, cfg.distribution, 0, d, z.data());
        double g = 0;
        for (int64_t i = 0; i < d; ++i) g += double(th[i] - target[i]) * double(z[i]);
        const Encoded enc = encode_gradient(float(g), e.scale, key);
        ASSERT_NE(enc.status, EncodeStatus::NonFinite);
        e.records.push_back({0, slot, enc.code, RecordKind::Gradient});
        codes.push_back(enc.code);
      }
      opt.apply(e);
      scale.update(e.scale, codes.data(), codes.size());
    }
    EXPECT_LT(loss(), 0.1 * start) << update_rule_name(rule) << ": " << start << " -> " << loss();
  }
}

}  // namespace
}  // namespace zeroth
