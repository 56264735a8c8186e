// The adaptive and structured rules (adam, adamezo, muon) and ALLoRA's row
// scaling: each matches a naive implementation of update.h's formulas bit for
// bit, replay equals one-by-one application on any thread count, adamezo with
// a horizon past the run is adam, and each rule descends a quadratic through
// the codec.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <deque>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"
#include "optim/codec.h"
#include "optim/layer_sampling.h"
#include "optim/directions.h"
#include "optim/newton_schulz.h"
#include "optim/update.h"
#include "tests/core/cuda_test_util.h"
#include "tests/optim/update_test_util.h"

namespace zeroth {
namespace {

// θ as one vector cut into matrices and a vector; one matrix spans several
// replay windows (kReplayChunk = 16384), LoRA-like shapes both ways.
struct Theta {
  std::vector<float> v;
  TrainableSet set;
  static constexpr std::array<std::pair<int64_t, int64_t>, 5> kShapes = {
      {{8, 300}, {300, 8}, {1, 17}, {150, 130}, {0, 129}}};  // {0, n}: a vector of n
  explicit Theta(unsigned seed) {
    int64_t n = 0;
    for (auto [r, c] : kShapes) n += r > 0 ? r * c : c;
    v.resize(size_t(n));
    std::mt19937 rng(seed);
    std::normal_distribution<float> w(0.0f, 0.05f);
    for (float& x : v) x = w(rng);
    int64_t at = 0;
    for (size_t t = 0; t < kShapes.size(); ++t) {
      const auto [r, c] = kShapes[t];
      const Shape shape = r > 0 ? Shape{r, c} : Shape{c};
      // Layers 0..3 and one tensor outside them (LISA samples the layers).
      set.add(t + 1 < kShapes.size() ? "layers." + std::to_string(t) + ".w" : std::string("final_norm"), shape,
              v.data() + at);
      at += shape_numel(shape);
    }
  }
};

std::vector<StepEntry> make_entries(int count, uint64_t first_step, unsigned seed) {
  return test::random_entries(count, first_step, seed, 1, 12, 3);
}

OptimizerConfig config(UpdateRule rule, float allora = 0, Distribution d = Distribution::Rademacher) {
  OptimizerConfig c;
  c.rule = rule;
  c.weight_decay = 0.1f;
  c.momentum = 0.8f;
  c.beta1 = 0.85f;
  c.beta2 = 0.99f;
  c.adam_eps = 1e-6f;
  c.horizon = 3;
  c.muon_steps = 4;
  c.hessian_smooth = 0.05f;
  c.allora_eta = allora;
  c.distribution = d;
  c.run_seed = 0x5eedull;
  return c;
}

using test::bit_mismatches;

// update.h's formulas written out per element, z from the scalar reference.
struct Naive {
  OptimizerConfig cfg;
  const TrainableSet& shape_of;  // tensor shapes and offsets
  std::vector<float> m, v, D;  // D: hizoo's curvature estimate
  uint64_t t = 0;
  std::deque<std::vector<float>> recent;  // adamezo: ĝ of the last H entries
  Naive(const OptimizerConfig& c, const TrainableSet& set) : cfg(c), shape_of(set) {}

  // z of record key over θ, written out: LOZO's U·Vᵀ/√r on the matrices it
  // applies to (U, V from the scalar reference streams), the plain z elsewhere.
  void z_of(const PerturbationKey& key, int64_t n, float* z) const {
    if (cfg.directions.orthogonal_slots) {  // slot 0's z with slot s's Walsh–Hadamard signs
      generate_z_reference({key.run_seed, key.step, key.member, 0}, cfg.distribution, 0, n, z);
      for (int64_t i = 0; i < n; ++i)
        if (std::popcount(uint64_t(key.slot) & uint64_t(i)) & 1) z[i] = -z[i];
      return;
    }
    generate_z_reference(key, cfg.distribution, 0, n, z);
    if (!cfg.directions.low_rank()) return;
    const auto [ku, kv] = low_rank_factor_keys(key, cfg.directions);
    const int64_t r = cfg.directions.lozo_rank;
    for (const TrainableTensor& tt : shape_of.tensors()) {
      if (!(tt.shape.size() == 2 && tt.shape[0] > r && tt.shape[1] > r)) continue;
      const int64_t rows = tt.shape[0], cols = tt.shape[1];
      std::vector<float> u(size_t(rows * r)), v(size_t(cols * r));
      generate_z_reference(ku, cfg.distribution, tt.offset, tt.offset + rows * r, u.data());
      generate_z_reference(kv, cfg.distribution, tt.offset, tt.offset + cols * r, v.data());
      const float inv = float(1.0 / std::sqrt(double(r)));
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t c = 0; c < cols; ++c) {
          float s = 0.0f;
          for (int64_t j = 0; j < r; ++j) s = s + u[size_t(i * r + j)] * v[size_t(c * r + j)];
          z[tt.offset + i * cols + c] = s * inv;
        }
    }
  }

  std::vector<float> estimate(const StepEntry& e, int64_t n) const {
    const size_t len = static_cast<size_t>(n);
    std::vector<float> acc(len, 0.0f), z(len), a(len);
    size_t grads = 0;
    for (const Record& r : e.records) grads += r.kind != RecordKind::Curvature;
    const float count = float(grads);
    for (const Record& r : e.records) {
      if (r.kind == RecordKind::Curvature) continue;
      const float q = float(int8_t(r.code)) * e.scale / count;
      const float c = -q;
      z_of({cfg.run_seed, uint32_t(e.step), r.member, r.slot}, n, z.data());
      for (int64_t i = 0; i < n; ++i) acc[size_t(i)] = acc[size_t(i)] + c * z[size_t(i)];
    }
    for (int64_t i = 0; i < n; ++i) a[size_t(i)] = 0.0f * 1.0f - acc[size_t(i)];
    for (size_t i = 0; i < shape_of.mask().size(); ++i)
      if (!shape_of.mask()[i]) a[i] = 0.0f;
    return a;
  }

  void apply(const StepEntry& e, std::vector<float>& th) {
    const int64_t n = int64_t(th.size());
    const float decay = 1.0f - e.lr * cfg.weight_decay;
    if (m.empty()) m.assign(th.size(), 0.0f), v.assign(th.size(), 0.0f), D.assign(th.size(), 1.0f);
    if (e.records.empty()) {
      for (size_t i = 0; i < th.size(); ++i)
        if (shape_of.mask().empty() || shape_of.mask()[i]) th[i] = th[i] * decay;
      return;
    }
    // LISA: the tensors of layers left out this step only decay; their state waits.
    std::vector<uint8_t> out(th.size(), 0);
    if (cfg.lisa_layers > 0) {
      const auto act = sampled_layers(cfg.run_seed, e.step, layer_count(shape_of), cfg.lisa_layers);
      for (const TrainableTensor& tt : shape_of.tensors())
        if (const int l = tensor_layer(tt.name); l >= 0 && !act[size_t(l)])
          std::fill(out.begin() + tt.offset, out.begin() + tt.offset + tt.n, uint8_t(1));
    }
    const std::vector<float> saved_m = m, saved_v = v, kept = th;
    apply_all(e, th, n, decay);
    for (size_t i = 0; i < th.size(); ++i)
      if (out[i]) {
        th[i] = kept[i] * decay;
        m[i] = saved_m[i];
        v[i] = saved_v[i];
      }
    // A sparse mask: the coordinates off it keep their bits (no decay either).
    for (size_t i = 0; i < shape_of.mask().size(); ++i)
      if (!shape_of.mask()[i]) th[i] = kept[i];
  }

  void apply_all(const StepEntry& e, std::vector<float>& th, int64_t n, float decay) {
    const std::vector<float> a = estimate(e, n);
    std::vector<float> d(th.size());
    const float omb1 = 1.0f - cfg.beta1, omb2 = 1.0f - cfg.beta2;
    auto bias = [&](uint64_t steps, float beta) {
      double p = 1;
      for (uint64_t i = 0; i < steps; ++i) p *= double(beta);
      return float(1.0 - p);
    };
    ++t;
    switch (cfg.rule) {
      case UpdateRule::Sgd: d = a; break;
      case UpdateRule::Momentum:
        for (size_t i = 0; i < d.size(); ++i) d[i] = m[i] = m[i] * cfg.momentum + a[i];
        break;
      case UpdateRule::Sign:
        for (size_t i = 0; i < d.size(); ++i) d[i] = a[i] > 0 ? 1.0f : (a[i] < 0 ? -1.0f : 0.0f);
        break;
      case UpdateRule::Adam: {
        const float b1 = bias(t, cfg.beta1), b2 = bias(t, cfg.beta2);
        for (size_t i = 0; i < d.size(); ++i) {
          m[i] = m[i] * cfg.beta1 + omb1 * a[i];
          v[i] = v[i] * cfg.beta2 + omb2 * (a[i] * a[i]);
          d[i] = (m[i] / b1) / (std::sqrt(v[i] / b2) + cfg.adam_eps);
        }
        break;
      }
      case UpdateRule::AdaMezo: {
        recent.push_back(a);
        if (recent.size() > size_t(cfg.horizon)) recent.pop_front();
        const float b1 = bias(recent.size(), cfg.beta1), b2 = bias(recent.size(), cfg.beta2);
        std::vector<float> mm(th.size(), 0.0f), vv(th.size(), 0.0f);
        for (const auto& g : recent)
          for (size_t i = 0; i < d.size(); ++i) {
            mm[i] = mm[i] * cfg.beta1 + omb1 * g[i];
            vv[i] = vv[i] * cfg.beta2 + omb2 * (g[i] * g[i]);
          }
        for (size_t i = 0; i < d.size(); ++i) d[i] = (mm[i] / b1) / (std::sqrt(vv[i] / b2) + cfg.adam_eps);
        break;
      }
      case UpdateRule::HiZoo: {
        for (size_t i = 0; i < d.size(); ++i) d[i] = a[i] / std::sqrt(D[i]);
        std::vector<const Record*> curv;
        for (const Record& r : e.records)
          if (r.kind == RecordKind::Curvature) curv.push_back(&r);
        if (curv.empty()) break;
        std::vector<float> b(th.size(), 0.0f), z(th.size());
        for (const Record* r : curv) {
          const float c = decode_curvature(r->code) / float(curv.size());
          generate_z_reference({cfg.run_seed, uint32_t(e.step), r->member, r->slot}, cfg.distribution, 0, n, z.data());
          for (size_t i = 0; i < b.size(); ++i) b[i] = b[i] + c * (z[i] * z[i]);
        }
        const float keep = 1.0f - cfg.hessian_smooth;
        for (size_t i = 0; i < D.size(); ++i) D[i] = D[i] * keep + cfg.hessian_smooth * (b[i] * D[i]);
        break;
      }
      case UpdateRule::Muon:
        d = a;
        for (const TrainableTensor& tt : shape_of.tensors())
          if (tt.shape.size() == 2 && tt.shape[0] > 1 && tt.shape[1] > 1) {
            newton_schulz(a.data() + tt.offset, tt.shape[0], tt.shape[1], cfg.muon_steps, d.data() + tt.offset);
            const float s = float(std::sqrt(std::max(1.0, double(tt.shape[0]) / double(tt.shape[1]))));
            for (int64_t i = 0; i < tt.n; ++i) d[size_t(tt.offset + i)] = d[size_t(tt.offset + i)] * s;
            for (int64_t i = 0; i < tt.n && shape_of.masked(); ++i)
              if (!shape_of.mask()[size_t(tt.offset + i)]) d[size_t(tt.offset + i)] = 0.0f;
          }
        break;
    }
    for (const TrainableTensor& tt : shape_of.tensors()) {
      const int64_t cols = cfg.allora_eta > 0 ? (tt.shape.size() == 2 ? tt.shape[1] : tt.n) : tt.n;
      for (int64_t r0 = 0; r0 < tt.n; r0 += cols) {
        float lr = e.lr;
        if (cfg.allora_eta > 0) {
          double sq = 0;
          for (int64_t i = r0; i < r0 + cols; ++i) sq += double(th[size_t(tt.offset + i)]) * th[size_t(tt.offset + i)];
          lr = e.lr * float(1.0 / std::sqrt(sq + 1.0 / (double(cfg.allora_eta) * cfg.allora_eta)));
        }
        for (int64_t i = r0; i < r0 + cols; ++i) {
          const size_t k = size_t(tt.offset + i);
          th[k] = th[k] * decay - lr * d[k];
        }
      }
    }
  }
};

struct Case {
  UpdateRule rule;
  float allora;
  int lisa = 0;
  bool sparse = false;  // θ carries a magnitude mask of density 0.3
  int lozo = 0;         // LOZO's rank (period 3)
  bool ortho = false;   // zo.orthogonal_slots
};
const Case kCases[] = {{UpdateRule::Adam, 0},        {UpdateRule::AdaMezo, 0},    {UpdateRule::Muon, 0},
                       {UpdateRule::Sgd, 0.5f},      {UpdateRule::Momentum, 2},   {UpdateRule::Sign, 1},
                       {UpdateRule::Adam, 0.25f},    {UpdateRule::AdaMezo, 1},    {UpdateRule::Muon, 1},
                       {UpdateRule::Sgd, 0, 2},      {UpdateRule::Momentum, 0, 1}, {UpdateRule::Adam, 0, 2},
                       {UpdateRule::Muon, 0.5f, 3},  {UpdateRule::Sgd, 0, 0, true}, {UpdateRule::Momentum, 0, 0, true},
                       {UpdateRule::Adam, 0, 0, true}, {UpdateRule::AdaMezo, 0, 0, true},
                       {UpdateRule::Muon, 0.5f, 0, true}, {UpdateRule::Sign, 0, 2, true}, {UpdateRule::HiZoo, 0},
                       {UpdateRule::HiZoo, 0.5f},     {UpdateRule::Sgd, 0, 0, false, 2},
                       {UpdateRule::Adam, 0, 0, false, 3}, {UpdateRule::Muon, 0.5f, 0, false, 2},
                       {UpdateRule::Momentum, 0, 2, true, 1}, {UpdateRule::Sgd, 0, 0, false, 0, true},
                       {UpdateRule::Adam, 0.25f, 0, false, 0, true}};

std::string name(const Case& c) {
  return std::string(update_rule_name(c.rule)) + (c.allora > 0 ? "+allora" : "") +
         (c.lisa > 0 ? "+lisa" + std::to_string(c.lisa) : "") + (c.sparse ? "+sparse" : "") +
         (c.lozo > 0 ? "+lozo" + std::to_string(c.lozo) : "") + (c.ortho ? "+orthogonal" : "");
}

OptimizerConfig config(const Case& c, Distribution d = Distribution::Rademacher) {
  OptimizerConfig cfg = config(c.rule, c.allora, d);
  cfg.lisa_layers = c.lisa;
  cfg.directions = {c.lozo, 3, c.ortho};
  return cfg;
}

// The entries a case's rule reads: hizoo's carry curvature records too.
std::vector<StepEntry> entries_for(const Case& cs, std::vector<StepEntry> entries) {
  return cs.rule == UpdateRule::HiZoo ? test::with_curvature(std::move(entries), 17) : entries;
}

TEST(UpdateRules, EachMatchesNaiveBitExact) {
  for (const Case& cs : kCases)
    for (Distribution d : {Distribution::Rademacher, Distribution::Gaussian}) {
      const auto entries = entries_for(cs, make_entries(10, 0, 1));
      const OptimizerConfig cfg = config(cs, d);
      Theta t(2);
      if (cs.sparse) t.set.set_mask(magnitude_mask(t.set, 0.3));
      std::vector<float> th = t.v;
      ZerothOrderOptimizer opt(cfg, t.set, 2);
      Naive naive(cfg, t.set);
      for (const StepEntry& e : entries) {
        opt.apply(e);
        naive.apply(e, th);
        ASSERT_EQ(bit_mismatches(t.v, th), 0) << name(cs) << " " << distribution_name(d) << " step " << e.step;
      }
      if (cs.rule == UpdateRule::Adam) {
        EXPECT_EQ(bit_mismatches(opt.momentum_buffer(), naive.m), 0);
        EXPECT_EQ(bit_mismatches(opt.second_moment(), naive.v), 0);
      }
      if (cs.rule == UpdateRule::HiZoo) {
        EXPECT_EQ(bit_mismatches(opt.curvature(), naive.D), 0);
        EXPECT_EQ(t.set.curvature().data(), opt.curvature().data());  // lent to θ for the members
        if (d == Distribution::Gaussian) {  // z² varies: so does D
          const auto [lo, hi] = std::minmax_element(naive.D.begin(), naive.D.end());
          EXPECT_LT(*lo, *hi);
        }
      }
      const Theta start(2);
      const int64_t moved = bit_mismatches(t.v, start.v);
      if (cs.sparse)  // about 0.3 of θ (the mask), every one of them
        EXPECT_GT(moved, int64_t(t.v.size() / 4)) << name(cs) << ": θ must have moved";
      else
        EXPECT_GT(moved, int64_t(t.v.size() / 2)) << name(cs) << ": θ must have moved";
      for (size_t i = 0; i < t.set.mask().size(); ++i) {
        if (!t.set.mask()[i]) {
          ASSERT_EQ(t.v[i], start.v[i]) << name(cs) << ": off the mask at " << i;
        }
      }
    }
}

TEST(UpdateRules, ReplayEqualsOneByOneAndThreadsDoNotMatter) {
  for (const Case& cs : kCases) {
    const auto entries = entries_for(cs, make_entries(30, 50, 3));
    const OptimizerConfig cfg = config(cs);
    Theta one(4), fused(4), halves(4), single(4);
    if (cs.sparse)
      for (Theta* t : {&one, &fused, &halves, &single}) t->set.set_mask(magnitude_mask(t->set, 0.3));
    ZerothOrderOptimizer o1(cfg, one.set, 2), of(cfg, fused.set, 2), oh(cfg, halves.set, 1), os(cfg, single.set, 1);
    for (const StepEntry& e : entries) o1.apply(e);
    of.replay(entries);
    oh.replay(std::span(entries).first(11));
    oh.replay(std::span(entries).subspan(11));
    for (const StepEntry& e : entries) os.apply(e);
    EXPECT_EQ(bit_mismatches(one.v, fused.v), 0) << name(cs);
    EXPECT_EQ(bit_mismatches(one.v, halves.v), 0) << name(cs);
    EXPECT_EQ(bit_mismatches(one.v, single.v), 0) << name(cs) << ": 1 vs 2 threads";
  }
}

TEST(UpdateRules, AdaMezoWithAHorizonPastTheRunIsAdam) {
  const auto entries = make_entries(20, 0, 5);
  OptimizerConfig adam = config(UpdateRule::Adam), ada = config(UpdateRule::AdaMezo);
  ada.horizon = 64;
  Theta a(6), b(6), c(6);
  ZerothOrderOptimizer(adam, a.set, 2).replay(entries);
  ZerothOrderOptimizer(ada, b.set, 2).replay(entries);
  EXPECT_EQ(bit_mismatches(a.v, b.v), 0);
  ada.horizon = 3;  // a short horizon forgets: it must differ
  ZerothOrderOptimizer(ada, c.set, 2).replay(entries);
  EXPECT_GT(bit_mismatches(a.v, c.v), int64_t(a.v.size() / 2));
}

TEST(UpdateRules, StateAndSnapshots) {
  EXPECT_EQ(config(UpdateRule::Adam).state_floats(1000), 2000);
  EXPECT_EQ(config(UpdateRule::AdaMezo).state_floats(1000), 0);
  EXPECT_EQ(config(UpdateRule::Muon).state_floats(1000), 0);
  EXPECT_EQ(config(UpdateRule::Momentum).state_floats(1000), 1000);
  EXPECT_TRUE(config(UpdateRule::Muon).stateless());
  EXPECT_TRUE(config(UpdateRule::Sgd, 1.0f).stateless());
  EXPECT_FALSE(config(UpdateRule::Adam).stateless());
  EXPECT_FALSE(config(UpdateRule::AdaMezo).stateless());
  EXPECT_EQ(config(UpdateRule::HiZoo).state_floats(1000), 1000);
  EXPECT_FALSE(config(UpdateRule::HiZoo).stateless());
  Theta t(7);
  ZerothOrderOptimizer ada(config(UpdateRule::AdaMezo), t.set);
  EXPECT_TRUE(ada.momentum_buffer().empty()) << "adamezo keeps no buffer the size of θ";
  // Curvature records are hizoo's alone; θ's lent D goes with its optimizer.
  const auto curved = test::with_curvature(make_entries(3, 0, 9), 2);
  EXPECT_THROW(ada.apply(curved[0]), Error);
  {
    ZerothOrderOptimizer hz(config(UpdateRule::HiZoo), t.set);
    EXPECT_EQ(t.set.curvature().size(), size_t(t.set.size()));
    EXPECT_NO_THROW(hz.apply(curved[0]));
  }
  EXPECT_TRUE(t.set.curvature().empty());
}

// HiZOO's curvature codes: four per octave, 2^(code/4) exactly on decode.
TEST(CurvatureCodec, LogGridRoundTrips) {
  for (int c = -127; c <= 127; ++c) {
    const float h = decode_curvature(uint8_t(int8_t(c)));
    EXPECT_EQ(h, float(std::exp2(double(c) / 4.0))) << c;
    EXPECT_EQ(int(int8_t(encode_curvature(h).code)), c) << c;
  }
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> e(-30, 30);
  for (int i = 0; i < 1000; ++i) {
    const float h = float(std::exp2(e(rng)));
    const Encoded x = encode_curvature(h);
    EXPECT_EQ(x.status, EncodeStatus::Ok);
    EXPECT_NEAR(decode_curvature(x.code) / h, 1.0, 0.091) << h;
  }
  EXPECT_EQ(encode_curvature(0.0f).status, EncodeStatus::Clipped);
  EXPECT_EQ(int(int8_t(encode_curvature(0.0f).code)), -127);
  EXPECT_EQ(int(int8_t(encode_curvature(1e30f).code)), 127);
  EXPECT_EQ(encode_curvature(-1.0f).status, EncodeStatus::NonFinite);
  EXPECT_EQ(encode_curvature(NAN).status, EncodeStatus::NonFinite);
  EXPECT_THROW(decode_curvature(0x80), Error);
}

// SparseMeZO's magnitude mask: per tensor the round(ρ·n) (at least one)
// smallest |θ|, ties to the lower index, and the same bits give the same mask.
TEST(SparseMask, SmallestMagnitudesPerTensor) {
  Theta t(5);
  for (double rho : {0.3, 0.01, 1.0}) {
    const std::vector<uint8_t> mask = magnitude_mask(t.set, rho);
    ASSERT_EQ(int64_t(mask.size()), t.set.size());
    for (const TrainableTensor& tt : t.set.tensors()) {
      int64_t on = 0;
      float max_on = 0, min_off = INFINITY;
      for (int64_t i = 0; i < tt.n; ++i) {
        const float a = std::fabs(tt.data[i]);
        if (mask[size_t(tt.offset + i)]) {
          ++on;
          max_on = std::max(max_on, a);
        } else {
          min_off = std::min(min_off, a);
        }
      }
      EXPECT_EQ(on, std::max<int64_t>(1, std::llround(rho * double(tt.n)))) << tt.name << " ρ " << rho;
      EXPECT_LE(max_on, min_off) << tt.name << " ρ " << rho;
    }
    EXPECT_EQ(mask, magnitude_mask(Theta(5).set, rho));
  }
  // Ties: all-zero tensors take the first round(ρ·n) elements.
  std::vector<float> zeros(10, 0.0f);
  TrainableSet z;
  z.add("b", {10}, zeros.data());
  EXPECT_EQ(magnitude_mask(z, 0.3), (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(magnitude_mask(z, 0.01), (std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_THROW(magnitude_mask(z, 0.0), Error);
  EXPECT_THROW(magnitude_mask(z, 1.5), Error);
  EXPECT_THROW(z.set_mask(std::vector<uint8_t>(3, 1)), Error);
}

// LOZO: a matrix's z is U·Vᵀ/√r, V kept for `period` steps; rows of it are
// the same wherever they are asked for; vectors and thin matrices keep z.
TEST(Directions, FactorsRankAndPeriod) {
  Theta t(3);
  const Directions lr{2, 5};
  const TrainableTensor& m = t.set.tensors()[3];  // 150 × 130
  ASSERT_TRUE(low_rank_applies(m, lr));
  EXPECT_FALSE(low_rank_applies(t.set.tensors()[2], lr));  // 1 × 17
  EXPECT_FALSE(low_rank_applies(t.set.tensors()[4], lr));  // a vector
  EXPECT_FALSE(low_rank_applies(m, Directions{}));
  const PerturbationKey key{9, 12, 3, 1};
  std::vector<float> z(size_t(m.n)), rows(size_t(4 * 130));
  low_rank_z(key, Distribution::Gaussian, lr, m, 0, 150, z.data());
  low_rank_z(key, Distribution::Gaussian, lr, m, 20, 24, rows.data());
  EXPECT_EQ(0, bit_mismatches(rows, std::vector<float>(z.begin() + 20 * 130, z.begin() + 24 * 130)));
  // Rank 2: every 3 × 3 minor vanishes (to rounding), while the rows are not all parallel.
  auto at = [&](int64_t i, int64_t c) { return double(z[size_t(i * 130 + c)]); };
  for (int64_t i = 0; i + 2 < 150; i += 37) {
    const double det = at(i, 0) * (at(i + 1, 1) * at(i + 2, 2) - at(i + 1, 2) * at(i + 2, 1)) -
                       at(i, 1) * (at(i + 1, 0) * at(i + 2, 2) - at(i + 1, 2) * at(i + 2, 0)) +
                       at(i, 2) * (at(i + 1, 0) * at(i + 2, 1) - at(i + 1, 1) * at(i + 2, 0));
    EXPECT_NEAR(det, 0.0, 1e-4) << i;
  }
  EXPECT_GT(std::abs(at(0, 0) * at(1, 1) - at(0, 1) * at(1, 0)), 1e-6);
  // Unit variance per element, about.
  double sq = 0;
  for (float x : z) sq += double(x) * x;
  EXPECT_NEAR(sq / double(z.size()), 1.0, 0.3);
  // V is kept for steps 10..14 and redrawn at 15; U is new every step.
  for (uint32_t s : {10u, 11u, 14u})
    EXPECT_EQ(low_rank_factor_keys({9, s, 3, 1}, lr).second.step, 2u) << s;
  EXPECT_EQ(low_rank_factor_keys({9, 15, 3, 1}, lr).second.step, 3u);
  EXPECT_NE(low_rank_factor_keys(key, lr).first.run_seed, key.run_seed);
  // Over θ: low-rank pieces where they apply, generate_z's values elsewhere.
  std::vector<float> all(size_t(t.set.size())), plain(all.size());
  perturbation_z(t.set, key, Distribution::Rademacher, lr, 0, t.set.size(), all.data());
  generate_z(key, Distribution::Rademacher, 0, t.set.size(), plain.data());
  const TrainableTensor& vec = t.set.tensors()[4];
  for (int64_t i = vec.offset; i < vec.offset + vec.n; ++i) ASSERT_EQ(all[size_t(i)], plain[size_t(i)]);
  std::vector<float> mz(size_t(m.n));
  low_rank_z(key, Distribution::Rademacher, lr, m, 0, 150, mz.data());
  EXPECT_EQ(0, bit_mismatches(mz, std::vector<float>(all.begin() + m.offset, all.begin() + m.offset + m.n)));
  EXPECT_THROW(perturbation_z(t.set, key, Distribution::Rademacher, lr, m.offset + 1, m.offset + 131, all.data()),
               Error);  // cuts a row
  EXPECT_THROW((Directions{-1, 5}.validate()), Error);
  EXPECT_THROW((Directions{2, 0}.validate()), Error);
  EXPECT_THROW((Directions{2, 5, true}.validate()), Error);
}

// Orthogonal slots: slot 0 keeps its z; slot s flips the signs where
// popcount(s & i) is odd, so Rademacher slots are exactly orthogonal over
// aligned blocks, where independent ones are only nearly so.
TEST(Directions, OrthogonalSlotsShareSlotZerosDirection) {
  Theta t(6);
  const Directions d{0, 10, true};
  const int64_t n = 4096;  // an aligned block: every slot below 4096 is orthogonal to the others on it
  std::vector<std::vector<float>> z(4, std::vector<float>(size_t(n)));
  for (uint32_t s = 0; s < 4; ++s) perturbation_z(t.set, {5, 7, 2, s}, Distribution::Rademacher, d, 0, n, z[s].data());
  std::vector<float> plain(static_cast<size_t>(n));
  generate_z({5, 7, 2, 0}, Distribution::Rademacher, 0, n, plain.data());
  EXPECT_EQ(0, bit_mismatches(z[0], plain));
  for (uint32_t s = 0; s < 4; ++s)
    for (uint32_t u = 0; u < 4; ++u) {
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += double(z[s][size_t(i)]) * z[u][size_t(i)];
      EXPECT_EQ(dot, s == u ? double(n) : 0.0) << s << " " << u;
    }
  // Another member's slots are its own.
  std::vector<float> other(static_cast<size_t>(n));
  perturbation_z(t.set, {5, 7, 3, 1}, Distribution::Rademacher, d, 0, n, other.data());
  EXPECT_GT(bit_mismatches(other, z[1]), n / 4);
  // A sub-range is the same values as the whole.
  std::vector<float> part(100);
  perturbation_z(t.set, {5, 7, 2, 3}, Distribution::Rademacher, d, 1000, 1100, part.data());
  EXPECT_EQ(0, bit_mismatches(part, std::vector<float>(z[3].begin() + 1000, z[3].begin() + 1100)));
}

TEST(UpdateRules, ConfigErrorsNameTheKey) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { parse_update_rule("lion"); }).find("optimizer.rule"), std::string::npos);
  EXPECT_NE(message([] { parse_update_rule("lion"); }).find("adamezo"), std::string::npos);
  EXPECT_EQ(parse_update_rule("muon"), UpdateRule::Muon);
  OptimizerConfig c;
  c.horizon = 0;
  EXPECT_NE(message([&] { c.validate(); }).find("optimizer.horizon"), std::string::npos);
  c = {};
  c.beta2 = 1.0f;
  EXPECT_NE(message([&] { c.validate(); }).find("optimizer.beta2"), std::string::npos);
  c = {};
  c.allora_eta = -1;
  EXPECT_NE(message([&] { c.validate(); }).find("optimizer.allora_eta"), std::string::npos);
  c = {};
  c.adam_eps = 0;
  EXPECT_NE(message([&] { c.validate(); }).find("optimizer.adam_eps"), std::string::npos);
  EXPECT_EQ(parse_update_rule("hizoo"), UpdateRule::HiZoo);
  c = {};
  c.rule = UpdateRule::HiZoo;
  c.hessian_smooth = 0;
  EXPECT_NE(message([&] { c.validate(); }).find("optimizer.hessian_smooth"), std::string::npos);
  c.hessian_smooth = 1e-3f;
  c.lisa_layers = 2;
  EXPECT_NE(message([&] { c.validate(); }).find("zo.lisa_layers"), std::string::npos);
  c.lisa_layers = 0;
  c.directions.lozo_rank = 2;
  EXPECT_NE(message([&] { c.validate(); }).find("zo.lozo_rank"), std::string::npos);
}

TEST(LayerSampling, DrawsKLayersPerStepUniformlyAndReproducibly) {
  constexpr int n = 30, k = 4, steps = 3000;
  std::vector<int> count(n, 0);
  std::set<uint64_t> distinct;  // each draw as a bit mask of its layers
  for (uint64_t step = 0; step < steps; ++step) {
    const auto a = sampled_layers(7, step, n, k);
    ASSERT_EQ(a.size(), size_t(n));
    int on = 0;
    uint64_t mask = 0;
    for (int l = 0; l < n; ++l) {
      on += a[size_t(l)];
      count[size_t(l)] += a[size_t(l)];
      mask |= uint64_t(a[size_t(l)]) << l;
    }
    ASSERT_EQ(on, k) << "step " << step;
    ASSERT_EQ(a, sampled_layers(7, step, n, k)) << "the same draw every time";
    distinct.insert(mask);
  }
  // C(30, 4) = 27,405 sets: 3,000 uniform draws give about 2,842 distinct ones.
  EXPECT_GT(distinct.size(), size_t(2700)) << "steps draw different layers";
  for (int l = 0; l < n; ++l)  // each layer in k/n of the steps: 400 ± 4.5 sd
    EXPECT_NEAR(count[size_t(l)], steps * k / n, 80) << "layer " << l;
  EXPECT_NE(sampled_layers(7, 5, n, k), sampled_layers(8, 5, n, k)) << "the run seed keys the draw";
  EXPECT_EQ(sampled_layers(7, 5, n, 0), std::vector<uint8_t>(n, 1));
  EXPECT_EQ(sampled_layers(7, 5, n, n + 3), std::vector<uint8_t>(n, 1));
  EXPECT_EQ(tensor_layer("layers.12.q.lora_A"), 12);
  EXPECT_EQ(tensor_layer("layers.3.attn_norm"), 3);
  EXPECT_EQ(tensor_layer("final_norm"), -1);
  EXPECT_EQ(tensor_layer("layers.x.w"), -1);
  EXPECT_EQ(tensor_layer("tok_embeddings"), -1);
}

TEST(UpdateRules, LisaLeavesUnsampledLayersToDecay) {
  OptimizerConfig cfg = config(UpdateRule::Sgd);
  cfg.lisa_layers = 1;
  Theta t(8);
  const std::vector<float> before = t.v;
  ZerothOrderOptimizer opt(cfg, t.set, 2);
  StepEntry e = make_entries(1, 11, 9)[0];
  opt.apply(e);
  const auto act = sampled_layers(cfg.run_seed, 11, 4, 1);
  const float decay = 1.0f - e.lr * cfg.weight_decay;
  int moved = 0;
  for (const TrainableTensor& tt : t.set.tensors()) {
    const int l = tensor_layer(tt.name);
    int64_t same = 0;
    for (int64_t i = 0; i < tt.n; ++i) same += t.v[size_t(tt.offset + i)] == before[size_t(tt.offset + i)] * decay;
    if (l >= 0 && !act[size_t(l)]) {
      EXPECT_EQ(same, tt.n) << tt.name << " sat out and only decays";
    } else {
      EXPECT_LT(same, tt.n / 2) << tt.name << " takes the step";
      ++moved;
    }
  }
  EXPECT_EQ(moved, 2) << "one sampled layer and the final norm";
}

// Addax's mix (optimizer.grad_weight α): gradient records and ZO records each
// averaged over their own kind and weighted α : 1 − α, on the sgd formula.
TEST(UpdateRules, GradWeightMixesTheKindsMeans) {
  StepEntry e;
  e.step = 3;
  e.scale = 2e-3f;
  e.lr = 1e-2f;
  e.records = {{0, 0, uint8_t(int8_t(40)), RecordKind::ZerothOrder},
               {0, 1, uint8_t(int8_t(-7)), RecordKind::ZerothOrder},
               {1, 0, uint8_t(int8_t(90)), RecordKind::Gradient},
               {2, 0, uint8_t(int8_t(-25)), RecordKind::ZerothOrder}};
  OptimizerConfig cfg = config(UpdateRule::Sgd);
  cfg.grad_weight = 0.75f;
  Theta t(10);
  std::vector<float> th = t.v;
  ZerothOrderOptimizer(cfg, t.set, 2).apply(e);
  const int64_t n = int64_t(th.size());
  std::vector<float> acc(th.size(), 0.0f), z(th.size());
  for (const Record& r : e.records) {
    const float g = float(int8_t(r.code)) * e.scale;
    const float q = r.kind == RecordKind::Gradient ? (g * 0.75f) / 1.0f : (g * (1.0f - 0.75f)) / 3.0f;
    const float c = e.lr * q;
    generate_z_reference({cfg.run_seed, uint32_t(e.step), r.member, r.slot}, cfg.distribution, 0, n, z.data());
    for (size_t i = 0; i < th.size(); ++i) acc[i] = acc[i] + c * z[i];
  }
  const float decay = 1.0f - e.lr * cfg.weight_decay;
  for (size_t i = 0; i < th.size(); ++i) th[i] = th[i] * decay - acc[i];
  EXPECT_EQ(bit_mismatches(t.v, th), 0);
  // One kind alone: the plain mean, as without the mix.
  StepEntry zo_only = e;
  zo_only.records.erase(zo_only.records.begin() + 2);
  Theta a(11), b(11);
  ZerothOrderOptimizer(cfg, a.set, 2).apply(zo_only);
  cfg.grad_weight = -1.0f;
  ZerothOrderOptimizer(cfg, b.set, 2).apply(zo_only);
  EXPECT_EQ(bit_mismatches(a.v, b.v), 0);
  // The mix differs from the plain mean where both kinds are there.
  Theta c(10);
  ZerothOrderOptimizer(cfg, c.set, 2).apply(e);
  EXPECT_GT(bit_mismatches(c.v, t.v), int64_t(c.v.size() / 2));
  cfg.grad_weight = 1.5f;
  EXPECT_THROW(cfg.validate(), Error);
}

// Newton–Schulz: singular values pushed near 1 (X·Xᵀ ≈ I on the short side),
// the transpose's result is the result's transpose bit for bit, zero stays zero.
TEST(NewtonSchulz, OrthogonalizesDeterministically) {
  std::mt19937 rng(9);
  std::normal_distribution<float> n01;
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{8, 300}, {300, 8}, {40, 40}}) {
    std::vector<float> g(size_t(rows * cols)), gt(g.size()), o(g.size()), ot(g.size());
    for (float& x : g) x = n01(rng);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) gt[size_t(j * rows + i)] = g[size_t(i * cols + j)];
    newton_schulz(g.data(), rows, cols, 5, o.data());
    newton_schulz(gt.data(), cols, rows, 5, ot.data());
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) ASSERT_EQ(o[size_t(i * cols + j)], ot[size_t(j * rows + i)]);
    const int64_t r = std::min(rows, cols);
    const bool wide = rows <= cols;
    for (int64_t i = 0; i < r; ++i)
      for (int64_t k = 0; k < r; ++k) {
        double s = 0;
        for (int64_t j = 0; j < std::max(rows, cols); ++j)
          s += wide ? double(o[size_t(i * cols + j)]) * o[size_t(k * cols + j)]
                    : double(o[size_t(j * cols + i)]) * o[size_t(j * cols + k)];
        if (i == k) {
          EXPECT_GT(s, 0.4) << rows << "x" << cols;  // singular values in about [0.7, 1.2]: squares in [0.49, 1.44]
          EXPECT_LT(s, 1.6) << rows << "x" << cols;
        } else {
          EXPECT_LT(std::abs(s), 0.35) << rows << "x" << cols << " (" << i << ", " << k << ")";
        }
      }
  }
  std::vector<float> zero(64, 0.0f), out(64, 1.0f);
  newton_schulz(zero.data(), 8, 8, 5, out.data());
  for (float x : out) EXPECT_EQ(x, 0.0f);
}

// L(θ) = ½|θ − θ*|² on a 12 × 10 matrix and a vector: g_k = <θ − θ*, z_k>
// encoded with the codec at the ledger-derived scale. Every rule must descend.
TEST(UpdateRules, EachDescendsAQuadraticThroughTheCodec) {
  for (const Case& cs : kCases) {
    constexpr int64_t rows = 12, cols = 10, vec = 20, d = rows * cols + vec;
    std::vector<float> th(d, 0.0f), target(d);
    for (int64_t i = 0; i < d; ++i) target[size_t(i)] = 0.5f * std::sin(float(i));
    TrainableSet set;
    set.add("w", {rows, cols}, th.data());
    set.add("n", {vec}, th.data() + rows * cols);
    OptimizerConfig cfg = config(cs);
    cfg.weight_decay = 0;
    cfg.horizon = 8;
    cfg.beta2 = 0.99f;
    const bool normalized = cs.rule != UpdateRule::Sgd && cs.rule != UpdateRule::Momentum;
    cfg.lr = normalized ? 3e-3f : (cs.rule == UpdateRule::Momentum ? 4e-3f : 2e-2f);
    if (cs.rule == UpdateRule::Muon) cfg.lr = 2e-2f;
    if (cs.allora > 0) cfg.lr /= cs.allora;  // ALLoRA multiplies by about η at the start
    ZerothOrderOptimizer opt(cfg, set, 1);
    CodecScale scale(CodecConfig{});
    auto loss = [&] {
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += 0.5 * double(th[size_t(i)] - target[size_t(i)]) * (th[size_t(i)] - target[size_t(i)]);
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
        perturbation_z(set, key, cfg.distribution, cfg.directions, 0, d, z.data());  // the shaped z where on
        double g = 0;
        for (int64_t i = 0; i < d; ++i) g += double(th[size_t(i)] - target[size_t(i)]) * double(z[size_t(i)]);
        const Encoded enc = encode_gradient(float(g), e.scale, key);
        ASSERT_NE(enc.status, EncodeStatus::NonFinite);
        e.records.push_back({0, slot, enc.code, RecordKind::Gradient});
        codes.push_back(enc.code);
      }
      opt.apply(e);
      scale.update(e.scale, codes.data(), codes.size());
    }
    EXPECT_LT(loss(), 0.2 * start) << name(cs) << ": " << start << " -> " << loss();
  }
}

}  // namespace
}  // namespace zeroth
