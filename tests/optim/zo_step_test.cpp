// One member's zeroth-order step (optim/zo_step.h) on a tiny random LLaMA with
// LoRA whose B is nonzero (so both A and B perturbations move the loss):
//   - the batched 2q-variant forward gives the same g as separate BatchScorer
//     runs at θ ± εz, and g is a directional derivative (a 10× larger ε agrees);
//   - moving θ by −lr·g·z through ZerothOrderOptimizer lowers the loss by about
//     lr·g² on the same samples (the sign and size of g are right);
//   - PerturbedLora materializes exactly A + σε·z over the tensor's global index
//     range, and σε = 0 is the plain adapters;
//   - sample_indices walks one permutation of the data per pass;
//   - non-finite losses drop the record and are counted.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "models/llama.h"
#include "models/tasks/task.h"
#include "optim/codec.h"
#include "optim/lora_trainable.h"
#include "optim/update.h"
#include "optim/zo_step.h"
#include "tests/models/task_test_util.h"
#include "tests/optim/member_step_test_util.h"

namespace zeroth {
namespace {

constexpr int64_t kVocab = 300;
constexpr uint64_t kRunSeed = 77, kDataSeed = 5;

LoraConfig lora_config() {
  LoraConfig lc;
  lc.rank = 4;
  lc.alpha = 8;
  lc.targets = {Proj::Q, Proj::V, Proj::Down};
  return lc;
}

struct Fixture {
  LlamaModel model{make_random_llama(test::task_llama_config(kVocab), 31), 1};
  std::unique_ptr<Task> task = make_task_from_examples(TaskConfig{}, test::random_documents(11, 3, kVocab), {}, {});
  LoraTrainable lora{lora_config(), model};
  Fixture() {
    lora.initialize(kRunSeed);
    test::make_b_nonzero(lora, 9);
  }
  const std::vector<Example>& train() const { return task->examples(Split::Train); }
  // Loss of one variant over examples `idx` (a BatchScorer run of its own).
  double loss(const AdapterSet* adapters, const std::vector<int64_t>& idx) const {
    BatchScorer s(*task);
    for (int64_t i : idx) s.add(train()[size_t(i)], 0);
    return s.run(model, adapters).loss[0];
  }
  double loss_at(const PerturbationKey& key, float sigma_eps, const std::vector<int64_t>& idx,
                 Distribution d = Distribution::Rademacher) const {
    const PerturbedLora one(lora, d, {{key, sigma_eps}});
    return loss(&one, idx);
  }
};

PerturbationKey key_of(uint64_t step, uint32_t member, uint32_t slot) {
  return {kRunSeed, uint32_t(step), member, slot};
}

ZoConfig exact_config(int q, int samples, bool central, bool share) {
  ZoConfig c;
  c.q = q;
  c.samples = samples;
  c.central = central;
  c.share_samples = share;
  c.exact_gradients = true;
  c.eps = 1e-3f;
  return c;
}

// g of every slot from zo_member_step equals the formula applied to losses of
// separate single-variant runs, for each estimator shape.
void expect_batched_equals_separate(const ZoConfig& cfg) {
  SCOPED_TRACE(testing::Message() << "central " << cfg.central << " share_samples " << cfg.share_samples);
  const Fixture f;
  const uint64_t step = 3;
  const uint32_t member = 1, members = 3;
  const MemberStepResult r =
      zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, step, member, members, 1.0f);
  ASSERT_EQ(r.gradients.size(), size_t(cfg.q));
  ASSERT_EQ(r.records.size(), size_t(cfg.q));
  EXPECT_EQ(r.dropped, 0);
  const int64_t n = int64_t(f.train().size());
  const uint64_t groups = cfg.share_samples ? 1 : uint64_t(cfg.q);
  for (int k = 0; k < cfg.q; ++k) {
    const auto idx = sample_indices(n, cfg.samples, kDataSeed,
                                    (step * members + member) * groups + (cfg.share_samples ? 0 : uint64_t(k)));
    const PerturbationKey key = key_of(step, member, uint32_t(k));
    const float eps = cfg.eps_at(step);
    const double lp = f.loss_at(key, eps, idx);
    const double other = cfg.central ? f.loss_at(key, -eps, idx) : f.loss(&f.lora.adapters(), idx);
    const double g = cfg.central ? (lp - other) / (2.0 * double(eps)) : (lp - other) / double(eps);
    // The rows of one variant see the same arithmetic in a batch as alone, so
    // the losses (and g) agree to rounding of the final float conversion.
    EXPECT_NEAR(r.gradients[size_t(k)], g, 1e-6 * std::abs(g)) << "slot " << k;
    const Record& rec = r.records[size_t(k)];
    EXPECT_EQ(rec.member, member);
    EXPECT_EQ(rec.slot, uint32_t(k));
    EXPECT_TRUE(rec.exact);
    EXPECT_EQ(rec.value, r.gradients[size_t(k)]);
  }
  // The slots hold different perturbations: their gradients differ.
  EXPECT_NE(r.gradients[0], r.gradients[1]);
  EXPECT_GT(std::abs(r.gradients[0]), 1e-3);
}

TEST(ZoMemberStep, BatchedVariantsEqualSeparateRuns) {
  expect_batched_equals_separate(exact_config(3, 4, true, true));
  expect_batched_equals_separate(exact_config(3, 2, true, false));
  expect_batched_equals_separate(exact_config(3, 4, false, true));
  expect_batched_equals_separate(exact_config(2, 3, false, false));
  ZoConfig scheduled = exact_config(3, 4, true, true);  // ε moves: the step's ε perturbs and divides
  scheduled.eps = 1e-2f;
  scheduled.eps_final = 1e-3f;
  scheduled.eps_steps = 4;
  expect_batched_equals_separate(scheduled);
}

// HiZOO (zo.curvature): with θ lending a curvature estimate D, the variants
// perturb along u = z/√D; each slot sends g = (L+ − L−)/2ε and a curvature
// record h = |L+ + L− − 2·L0|/2ε², all from one batched forward.
TEST(ZoMemberStep, CurvatureRecordsAndPreconditionedPerturbations) {
  Fixture f;
  std::vector<float> d(size_t(f.lora.set().size()));
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(0.25f, 4.0f);
  for (float& x : d) x = u(rng);
  f.lora.set().set_curvature(d);
  // The perturbed factors are θ + σε·z/√D, element by element.
  const PerturbationKey key = key_of(2, 1, 0);
  const PerturbedLora pl(f.lora, Distribution::Rademacher, {Variant{key, 0.5f}});
  std::vector<float> scratch(pl.scratch_floats(0, Proj::Q)), z(scratch.size());
  const LoraFactors pf = pl.get(0, Proj::Q, 0, scratch.data());
  const LoraFactors th = f.lora.adapters().get(0, Proj::Q, 0, nullptr);
  const int64_t na = int64_t(f.lora.adapters().A(0, Proj::Q).size()), off = f.lora.offset_a(0, Proj::Q);
  generate_z(key, Distribution::Rademacher, off, off + na, z.data());
  for (int64_t i = 0; i < na; ++i)
    ASSERT_EQ(pf.A[i], th.A[i] + 0.5f * (z[size_t(i)] / std::sqrt(d[size_t(off + i)]))) << i;
  PerturbedFactors dev;
  EXPECT_FALSE(pl.perturbed_factors(0, Proj::Q, 0, dev));  // the GPU kernel knows no D: the host forms them

  ZoConfig cfg = exact_config(3, 4, true, true);
  cfg.curvature = true;
  const uint64_t step = 2;
  const uint32_t member = 1, members = 2;
  const MemberStepResult r = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, step, member, members, 1.0f);
  ASSERT_EQ(r.records.size(), 6u);
  const auto idx = sample_indices(int64_t(f.train().size()), cfg.samples, kDataSeed, step * members + member);
  const double l0 = f.loss(&f.lora.adapters(), idx);
  for (int k = 0; k < cfg.q; ++k) {
    const Record& g = r.records[size_t(2 * k)];
    const Record& h = r.records[size_t(2 * k + 1)];
    EXPECT_EQ(g.kind, RecordKind::ZerothOrder);
    EXPECT_EQ(h.kind, RecordKind::Curvature);
    EXPECT_EQ(g.slot, uint32_t(k));
    EXPECT_EQ(h.slot, uint32_t(k));
    const double lp = f.loss_at(key_of(step, member, uint32_t(k)), cfg.eps, idx);
    const double lm = f.loss_at(key_of(step, member, uint32_t(k)), -cfg.eps, idx);
    const double want_g = (lp - lm) / (2.0 * double(cfg.eps));
    const double want_h = std::abs(lp + lm - 2.0 * l0) / (2.0 * double(cfg.eps) * double(cfg.eps));
    EXPECT_NEAR(g.value, want_g, 1e-6 * std::abs(want_g)) << k;
    EXPECT_NEAR(h.value, want_h, 1e-5 * want_h + 1e-3) << k;
    EXPECT_GT(h.value, 0.0f) << k;
  }
  // Without D lent the same keys perturb along z: different gradients.
  f.lora.set().set_curvature({});
  const MemberStepResult plain = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, step, member, members, 1.0f);
  EXPECT_NE(plain.records[0].value, r.records[0].value);
  // One-byte records: the curvature code is encode_curvature's.
  cfg.exact_gradients = false;
  const MemberStepResult coded = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, step, member, members, 0.05f);
  ASSERT_EQ(coded.records.size(), 6u);
  EXPECT_EQ(coded.records[1].code, encode_curvature(plain.records[1].value).code);
}

// LOZO (zo.lozo_rank): the variants perturb each LoRA factor along its rank-r
// z of optim/directions.h, and the step's gradient is the derivative along it.
TEST(ZoMemberStep, LowRankPerturbationsOfTheFactors) {
  Fixture f;
  const Directions lr{2, 4};
  const PerturbationKey key = key_of(5, 0, 1);
  const PerturbedLora pl(f.lora, Distribution::Rademacher, {Variant{key, 0.5f}}, 0, lr);
  std::vector<float> scratch(pl.scratch_floats(1, Proj::Down));
  const LoraFactors pf = pl.get(1, Proj::Down, 0, scratch.data());
  const LoraFactors th = f.lora.adapters().get(1, Proj::Down, 0, nullptr);
  for (const auto& [off, base, got] : {std::tuple{f.lora.offset_a(1, Proj::Down), th.A, pf.A},
                                       std::tuple{f.lora.offset_b(1, Proj::Down), th.B, pf.B}}) {
    const TrainableTensor* t = f.lora.set().at_index(off);
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(low_rank_applies(*t, lr)) << t->name;
    std::vector<float> z(size_t(t->n));
    low_rank_z(key, Distribution::Rademacher, lr, *t, 0, t->shape[0], z.data());
    for (int64_t i = 0; i < t->n; ++i) ASSERT_EQ(got[i], base[i] + 0.5f * z[size_t(i)]) << t->name << " " << i;
  }
  PerturbedFactors dev;
  EXPECT_FALSE(pl.perturbed_factors(1, Proj::Down, 0, dev));  // formed on the host for GPU members
  ZoConfig cfg = exact_config(2, 4, true, true);
  cfg.directions = lr;
  const MemberStepResult r = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, 5, 0, 1, 1.0f);
  ASSERT_EQ(r.records.size(), 2u);
  const auto idx = sample_indices(int64_t(f.train().size()), cfg.samples, kDataSeed, 5);
  for (int k = 0; k < 2; ++k) {
    const PerturbationKey kk = key_of(5, 0, uint32_t(k));
    const PerturbedLora plus(f.lora, Distribution::Rademacher, {Variant{kk, cfg.eps}}, 0, lr);
    const PerturbedLora minus(f.lora, Distribution::Rademacher, {Variant{kk, -cfg.eps}}, 0, lr);
    const double g = (f.loss(&plus, idx) - f.loss(&minus, idx)) / (2.0 * double(cfg.eps));
    EXPECT_NEAR(r.records[size_t(k)].value, g, 1e-6 * std::abs(g)) << k;
  }
}

// Addax's split (roles.short_tokens L): gradient/JVP members draw from the
// examples of at most L tokens, ZO members from the longer ones; each pool is
// walked like the whole split, and the ZO member step scores the long pool's draws.
TEST(ZoMemberStep, AddaxSplitsTheExamplesByLength) {
  const Fixture f;
  std::vector<int64_t> lengths;
  for (const Example& e : f.train()) lengths.push_back(int64_t(e.tokens.size()));
  std::vector<int64_t> sorted = lengths;
  std::sort(sorted.begin(), sorted.end());
  ZoConfig cfg = exact_config(2, 3, true, true);
  cfg.short_tokens = sorted[sorted.size() / 2];
  ASSERT_LT(cfg.short_tokens, sorted.back());
  const auto shorts = draw_pool(*f.task, cfg, true), longs = draw_pool(*f.task, cfg, false);
  EXPECT_EQ(shorts.size() + longs.size(), f.train().size());
  for (int64_t i : shorts) EXPECT_LE(lengths[size_t(i)], cfg.short_tokens);
  for (int64_t i : longs) EXPECT_GT(lengths[size_t(i)], cfg.short_tokens);
  for (uint64_t draw = 0; draw < 6; ++draw)
    for (int64_t i : sample_pool(longs, int64_t(f.train().size()), 4, kDataSeed, draw))
      EXPECT_GT(lengths[size_t(i)], cfg.short_tokens) << draw;
  // No split: the whole split, as before.
  ZoConfig all = cfg;
  all.short_tokens = 0;
  EXPECT_TRUE(draw_pool(*f.task, all, true).empty());
  EXPECT_EQ(sample_pool({}, int64_t(f.train().size()), 4, kDataSeed, 3),
            sample_indices(int64_t(f.train().size()), 4, kDataSeed, 3));
  // The ZO member's gradient is the difference on the long pool's draw.
  const MemberStepResult r = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, 1, 0, 1, 1.0f);
  const auto idx = sample_pool(longs, int64_t(f.train().size()), cfg.samples, kDataSeed, 1);
  const PerturbationKey key = key_of(1, 0, 0);
  const double g = (f.loss_at(key, cfg.eps, idx) - f.loss_at(key, -cfg.eps, idx)) / (2.0 * double(cfg.eps));
  EXPECT_NEAR(r.records[0].value, g, 1e-6 * std::abs(g));
  // A length past every example leaves the ZO members nothing: an error naming the key.
  cfg.short_tokens = sorted.back();
  try {
    draw_pool(*f.task, cfg, false);
    ADD_FAILURE() << "an empty pool was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("roles.short_tokens"), std::string::npos) << e.what();
  }
}

// zo.eps_final / zo.eps_steps: ε goes geometrically from eps to eps_final and stays.
TEST(ZoMemberStep, EpsScheduleIsGeometricThenHeld) {
  ZoConfig c;
  c.eps = 1e-2f;
  EXPECT_EQ(c.eps_at(0), 1e-2f);
  EXPECT_EQ(c.eps_at(1000), 1e-2f);  // no schedule: constant
  c.eps_final = 1e-4f;
  c.eps_steps = 100;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.eps_at(0), 1e-2f);
  EXPECT_FLOAT_EQ(c.eps_at(50), 1e-3f);
  EXPECT_FLOAT_EQ(c.eps_at(100), 1e-4f);
  EXPECT_EQ(c.eps_at(100), c.eps_at(5000));
  for (uint64_t t = 1; t <= 100; ++t) EXPECT_LT(c.eps_at(t), c.eps_at(t - 1)) << t;
  c.eps_steps = 0;
  EXPECT_THROW(c.validate(), Error);
}

// g is the derivative of the loss along z: a central difference with a 10×
// larger ε (far above float noise) gives nearly the same number, and the
// mean loss reported is about L(θ).
TEST(ZoMemberStep, GradientIsTheDirectionalDerivative) {
  const Fixture f;
  const ZoConfig cfg = exact_config(4, 6, true, true);
  const MemberStepResult r = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, 0, 0, 1, 1.0f);
  const auto idx = sample_indices(int64_t(f.train().size()), cfg.samples, kDataSeed, 0);
  const double l0 = f.loss(&f.lora.adapters(), idx);
  EXPECT_NEAR(r.loss, l0, 1e-3 * l0);
  for (int k = 0; k < cfg.q; ++k) {
    const PerturbationKey key = key_of(0, 0, uint32_t(k));
    const float big = 1e-2f;
    const double g_big = (f.loss_at(key, big, idx) - f.loss_at(key, -big, idx)) / (2.0 * double(big));
    EXPECT_NEAR(r.gradients[size_t(k)], g_big, 0.03 * std::abs(g_big) + 2e-3) << "slot " << k;
  }
}

// One SGD step along −g·z on the same samples lowers the loss by about lr·g²
// (first order: ΔL ≈ ⟨∇L, −lr·g·z⟩ = −lr·g²), slot by slot.
TEST(ZoMemberStep, StepAlongMinusGDescends) {
  const ZoConfig cfg = exact_config(6, 6, true, true);
  const uint64_t step = 2;
  const Fixture f0;
  const MemberStepResult r = zo_member_step(f0.model, *f0.task, f0.lora, cfg, kRunSeed, kDataSeed, step, 0, 1, 1.0f);
  const auto idx = sample_indices(int64_t(f0.train().size()), cfg.samples, kDataSeed, step);
  const double before = f0.loss(&f0.lora.adapters(), idx);
  double sum_change = 0, sum_predicted = 0;
  for (int k = 0; k < cfg.q; ++k) {
    Fixture f;  // a fresh θ (same init) for each slot
    OptimizerConfig oc;
    oc.lr = 1e-4f;
    oc.run_seed = kRunSeed;
    ZerothOrderOptimizer opt(oc, f.lora.set(), 1);
    StepEntry e;
    e.step = step;
    e.lr = oc.lr;
    e.scale = 1.0f;
    e.exact = true;
    e.records.push_back(r.records[size_t(k)]);
    opt.apply(e);
    const double after = f.loss(&f.lora.adapters(), idx);
    const double g = r.gradients[size_t(k)];
    const double predicted = -double(oc.lr) * g * g;
    sum_change += after - before;
    sum_predicted += predicted;
    if (std::abs(predicted) > 1e-5) {  // well above the float noise of a loss (~1e-6)
      EXPECT_LT(after, before) << "slot " << k << " g " << g;
      EXPECT_NEAR(after - before, predicted, 0.1 * std::abs(predicted)) << "slot " << k << " g " << g;
    }
  }
  EXPECT_LT(sum_change, 0);
  EXPECT_NEAR(sum_change, sum_predicted, 0.05 * std::abs(sum_predicted));
}

// σε = 0 hands out the plain adapters; σε ≠ 0 materializes A + σε·z and
// B + σε·z, z taken at the tensor's own global indices in the trainable set.
TEST(PerturbedLora, VariantsAreAPlusSigmaEpsZ) {
  const Fixture f;
  const PerturbationKey key = key_of(5, 2, 1);
  for (Distribution d : {Distribution::Rademacher, Distribution::Gaussian}) {
    const PerturbedLora pl(f.lora, d, {{key, 0.0f}, {key, 0.25f}, {key, -1e-3f}});
    const LoraConfig lc = lora_config();
    for (int l = 0; l < f.model.n_layers(); ++l)
      for (Proj p : lc.targets) {
        ASSERT_TRUE(pl.has(l, p));
        const std::string base = "layers." + std::to_string(l) + "." + std::string(proj_name(p));
        const TrainableTensor* ta = f.lora.set().find(base + ".lora_A");
        const TrainableTensor* tb = f.lora.set().find(base + ".lora_B");
        ASSERT_NE(ta, nullptr);
        ASSERT_NE(tb, nullptr);
        EXPECT_EQ(f.lora.offset_a(l, p), ta->offset);
        EXPECT_EQ(f.lora.offset_b(l, p), tb->offset);
        std::vector<float> scratch(pl.scratch_floats(l, p), std::nanf(""));
        ASSERT_EQ(scratch.size(), size_t(ta->n + tb->n));
        const LoraFactors plain = f.lora.adapters().get(l, p, 0, nullptr);
        const LoraFactors zero = pl.get(l, p, 0, scratch.data());
        EXPECT_EQ(zero.A, plain.A);
        EXPECT_EQ(zero.B, plain.B);
        EXPECT_EQ(zero.r, plain.r);
        EXPECT_EQ(zero.scale, plain.scale);
        for (float se : {0.25f, -1e-3f}) {
          const LoraFactors v = pl.get(l, p, se == 0.25f ? 1 : 2, scratch.data());
          EXPECT_EQ(v.r, plain.r);
          EXPECT_EQ(v.scale, plain.scale);
          for (int64_t i = 0; i < ta->n; ++i)
            ASSERT_EQ(v.A[i], ta->data[i] + se * z_at(key, d, ta->offset + i)) << base << " A[" << i << "]";
          for (int64_t i = 0; i < tb->n; ++i)
            ASSERT_EQ(v.B[i], tb->data[i] + se * z_at(key, d, tb->offset + i)) << base << " B[" << i << "]";
        }
      }
    EXPECT_THROW(pl.get(0, Proj::Q, 3, nullptr), Error);
  }
  // Through the forward: a σε = 0 variant scores exactly like the plain adapters.
  const std::vector<int64_t> idx = {0, 1, 2, 3};
  EXPECT_EQ(f.loss_at(key, 0.0f, idx), f.loss(&f.lora.adapters(), idx));
  EXPECT_NE(f.loss_at(key, 1e-2f, idx), f.loss(&f.lora.adapters(), idx));
}

// The trainable set's order and PEFT-style init: (layer, target, A then B),
// A ~ N(0, 1/(3·in)) reproducibly, B = 0.
TEST(LoraTrainable, LayoutAndInit) {
  LlamaModel model(make_random_llama(test::task_llama_config(kVocab), 2), 1);
  LoraTrainable a(lora_config(), model), b(lora_config(), model);
  a.initialize(11);
  b.initialize(11);
  EXPECT_EQ(a.set().hash(), b.set().hash());
  b.initialize(12);
  EXPECT_NE(a.set().hash(), b.set().hash());
  const auto& ts = a.set().tensors();
  ASSERT_EQ(ts.size(), size_t(2 * 3 * 2));
  EXPECT_EQ(ts[0].name, "layers.0.q.lora_A");
  EXPECT_EQ(ts[1].name, "layers.0.q.lora_B");
  EXPECT_EQ(ts[2].name, "layers.0.v.lora_A");
  EXPECT_EQ(ts[5].name, "layers.0.down.lora_B");
  EXPECT_EQ(ts[6].name, "layers.1.q.lora_A");
  int64_t at = 0;
  for (const auto& t : ts) {
    EXPECT_EQ(t.offset, at);
    at += t.n;
    if (t.name.ends_with("lora_B")) {
      EXPECT_TRUE(std::all_of(t.data, t.data + t.n, [](float x) { return x == 0.0f; })) << t.name;
    } else {
      double s2 = 0;
      for (int64_t i = 0; i < t.n; ++i) s2 += double(t.data[i]) * t.data[i];
      const double var = s2 / double(t.n), want = 1.0 / (3.0 * double(t.shape.back()));
      EXPECT_NEAR(var, want, 0.35 * want) << t.name;
    }
  }
  EXPECT_EQ(at, a.set().size());
  // A target named twice is an error.
  LoraConfig bad = lora_config();
  bad.targets = {Proj::Q, Proj::Q};
  EXPECT_THROW(LoraTrainable(bad, model), Error);
}

TEST(SampleIndices, EachPassIsAPermutation) {
  for (int64_t n : {1, 2, 7, 16, 33}) {
    for (int64_t count : {1, 3, 5, 40}) {
      SCOPED_TRACE(testing::Message() << "n " << n << " count " << count);
      // The stream of positions that draws 0, 1, 2, ... walk, in order.
      std::vector<int64_t> stream;
      for (uint64_t d = 0; int64_t(stream.size()) < 4 * n + count; ++d) {
        const auto idx = sample_indices(n, count, 42, d);
        ASSERT_EQ(idx.size(), size_t(count));
        EXPECT_EQ(idx, sample_indices(n, count, 42, d));  // deterministic
        stream.insert(stream.end(), idx.begin(), idx.end());
      }
      for (size_t pass = 0; (pass + 1) * size_t(n) <= stream.size(); ++pass) {
        std::vector<int64_t> one(stream.begin() + pass * n, stream.begin() + (pass + 1) * n);
        std::sort(one.begin(), one.end());
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(one[size_t(i)], i) << "pass " << pass;
      }
    }
  }
  // Draws are random access: draw d of count c is positions [d·c, (d+1)·c).
  const auto a = sample_indices(10, 4, 1, 3), b = sample_indices(10, 12, 1, 1);
  EXPECT_EQ(a, std::vector<int64_t>(b.begin(), b.begin() + 4));
  // Seeds and passes change the order.
  const auto s1 = sample_indices(50, 50, 1, 0), s2 = sample_indices(50, 50, 2, 0), s1b = sample_indices(50, 50, 1, 1);
  EXPECT_NE(s1, s2);
  EXPECT_NE(s1, s1b);
  std::vector<int64_t> identity(50);
  for (int64_t i = 0; i < 50; ++i) identity[size_t(i)] = i;
  EXPECT_NE(s1, identity);
  EXPECT_THROW(sample_indices(0, 1, 1, 0), Error);
}

// A NaN in the adapters makes every loss NaN: each slot is dropped and counted,
// nothing reaches the records, in the codec path and the exact path alike.
TEST(ZoMemberStep, NonFiniteLossesAreDropped) {
  Fixture f;
  f.lora.adapters().A(1, Proj::V)[3] = std::numeric_limits<float>::quiet_NaN();
  for (bool exact : {false, true}) {
    ZoConfig cfg = exact_config(3, 2, true, true);
    cfg.exact_gradients = exact;
    const MemberStepResult r = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, 0, 0, 2, 0.5f);
    EXPECT_TRUE(r.records.empty());
    EXPECT_EQ(r.dropped, 3);
    EXPECT_EQ(r.clipped, 0);
    ASSERT_EQ(r.gradients.size(), 3u);
    for (float g : r.gradients) EXPECT_TRUE(std::isnan(g));
  }
  // At the encode level: NaN and ±Inf are reported, never given a code.
  for (float g : {std::nanf(""), INFINITY, -INFINITY})
    EXPECT_EQ(encode_gradient(g, 1.0f, key_of(0, 0, 0)).status, EncodeStatus::NonFinite);
}

// The codec path: each code decodes to g within one step of the scale
// (stochastic rounding), and a tiny scale clips and counts every slot.
TEST(ZoMemberStep, CodecRecordsDecodeToTheGradient) {
  const Fixture f;
  ZoConfig cfg = exact_config(5, 3, true, true);
  cfg.exact_gradients = false;
  const float scale = 0.05f;
  const MemberStepResult r = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, 4, 1, 2, scale);
  ASSERT_EQ(r.records.size(), 5u);
  for (int k = 0; k < 5; ++k) {
    const Record& rec = r.records[size_t(k)];
    EXPECT_FALSE(rec.exact);
    EXPECT_EQ(rec.slot, uint32_t(k));
    EXPECT_EQ(rec.member, 1u);
    const float g = r.gradients[size_t(k)];
    ASSERT_LT(std::abs(g), 127 * scale) << "pick a larger scale for this model";
    EXPECT_LE(std::abs(decode_gradient(rec.code, scale) - g), scale * 1.0001f) << "slot " << k;
    EXPECT_EQ(rec.code, encode_gradient(g, scale, key_of(4, 1, uint32_t(k))).code);
  }
  EXPECT_EQ(r.clipped, 0);
  const MemberStepResult tiny = zo_member_step(f.model, *f.task, f.lora, cfg, kRunSeed, kDataSeed, 4, 1, 2, 1e-9f);
  EXPECT_EQ(tiny.clipped, 5);
  ASSERT_EQ(tiny.records.size(), 5u);
  for (const Record& rec : tiny.records) EXPECT_EQ(std::abs(int(int8_t(rec.code))), 127);
}


// zo.redundancy r: the members of a group perturb along their group's first
// member's z, each on its own samples (its own lane); the codec dither stays
// per member.
TEST(ZoMemberStep, RedundantMembersShareTheirGroupsDirections) {
  const Fixture f;
  ZoConfig grouped = exact_config(3, 2, true, true);
  grouped.redundancy = 3;
  ZoConfig solo = exact_config(3, 2, true, true);
  const uint64_t step = 2;
  // Member 4 of groups of 3 (owner 3) on lane 4 = member 3's own keys on lane 4.
  const MemberStepResult a = zo_member_step(f.model, *f.task, f.lora, grouped, kRunSeed, kDataSeed, step, 4, 6, 1.0f);
  const MemberStepResult b = zo_member_step(f.model, *f.task, f.lora, solo, kRunSeed, kDataSeed, step, 3, 6, 1.0f, 4);
  ASSERT_EQ(a.records.size(), 3u);
  EXPECT_EQ(a.gradients, b.gradients);
  for (const auto& r : a.records) EXPECT_EQ(r.member, 4u);  // records still name their member
  // ...and differ from member 4's own directions on the same samples.
  const MemberStepResult own = zo_member_step(f.model, *f.task, f.lora, solo, kRunSeed, kDataSeed, step, 4, 6, 1.0f);
  EXPECT_NE(a.gradients, own.gradients);
  // The group's first member is unchanged by grouping.
  const MemberStepResult owner = zo_member_step(f.model, *f.task, f.lora, grouped, kRunSeed, kDataSeed, step, 3, 6, 1.0f);
  const MemberStepResult owner_solo = zo_member_step(f.model, *f.task, f.lora, solo, kRunSeed, kDataSeed, step, 3, 6, 1.0f);
  EXPECT_EQ(owner.gradients, owner_solo.gradients);
  EXPECT_EQ(key_member(4, 3), 3u);
  EXPECT_EQ(key_member(5, 1), 5u);
  ZoConfig bad = grouped;
  bad.redundancy = 0;
  EXPECT_THROW(bad.validate(), Error);
}

}  // namespace
}  // namespace zeroth
