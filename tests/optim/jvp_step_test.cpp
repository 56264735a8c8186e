// Forward-mode directional derivatives (CausalLM::jvp, task_jvp,
// jvp_member_step) on tiny random LLaMAs with grouped-query attention and LoRA
// on all seven projections: dL(θ + εz_k)/dε against ⟨∇L, z_k⟩ from the
// backward (task_gradient → flatten_gradient → project_gradient) on the same
// keys, for the LM and label-word losses, f32 and quantized bases, norms
// trained or frozen.
//
// Both sides are exact derivatives computed in float32 by different routes
// (tangents forward vs adjoints backward), so they agree to float rounding:
// the tolerance is 1e-4 of the largest |g_k| of the check (measured values are
// printed; ≲ 1e-6 is typical). A wrong tangent rule anywhere (one op, one
// projection, the norm gains, the output layer) moves g_k by far more.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "models/llama.h"
#include "models/tasks/task_gradient.h"
#include "models/tasks/task_jvp.h"
#include "optim/grad_step.h"
#include "optim/jvp_step.h"
#include "tests/models/task_test_util.h"

namespace zeroth {
namespace {

constexpr double kTol = 1e-4;
constexpr uint64_t kRunSeed = 77, kDataSeed = 5;
const std::vector<Proj> kAllProjections = {Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down};

LlamaConfig config_for(DType t) {
  LlamaConfig c = test::task_llama_config(50);  // 4 query heads on 2 kv heads
  if (t != DType::F32) c.dim = c.hidden_dim = 64;  // NF4 and the block formats want rows of 64
  return c;
}

// θ: PEFT's initialization with B ≠ 0 (so that A's directions move the loss),
// and gains moved off the base's when norms train.
void randomize(LoraTrainable& lora, uint32_t seed) {
  lora.initialize(seed);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.2f);
  for (const auto& t : lora.set().tensors()) {
    if (t.name.ends_with("lora_B"))
      for (int64_t i = 0; i < t.n; ++i) t.data[i] = nd(rng);
    if (t.name.ends_with("norm"))
      for (int64_t i = 0; i < t.n; ++i) t.data[i] += 0.1f * nd(rng);
  }
}

std::vector<const Example*> all_train(const Task& task) {
  std::vector<const Example*> out;
  for (const auto& e : task.examples(Split::Train)) out.push_back(&e);
  return out;
}

std::vector<PerturbationKey> keys_of(uint32_t member, int q) {
  std::vector<PerturbationKey> keys;
  for (int k = 0; k < q; ++k) keys.push_back({kRunSeed, 3, member, uint32_t(k)});
  return keys;
}

// max_k |jvp_k − ⟨∇L, z_k⟩| / max_k |⟨∇L, z_k⟩| over q directions in one pass.
double jvp_vs_backward(const LlamaModel& m, const Task& task, const LoraTrainable& lora, Distribution dist,
                       const std::string& label) {
  const PerturbedLora theta(lora, dist, {Variant{PerturbationKey{}, 0.0f}});
  const auto examples = all_train(task);
  const auto keys = keys_of(1, 4);
  const TaskGradient tg = task_gradient(m, task, examples, theta);
  const std::vector<float> flat = flatten_gradient(lora, tg.grads);
  const LoraDirections dirs(lora, dist, keys);
  const TaskJvp tj = task_jvp(m, task, examples, theta, dirs, dirs.count());
  EXPECT_EQ(tj.loss, tg.loss) << label << ": the same forward and the same loss, bit for bit";
  EXPECT_EQ(tj.tokens, tg.tokens);
  EXPECT_EQ(tj.derivatives.size(), keys.size());
  double err = 0, scale = 0;
  for (size_t k = 0; k < keys.size(); ++k) {
    const double ref = project_gradient(flat, keys[k], dist);
    err = std::max(err, std::abs(tj.derivatives[k] - ref));
    scale = std::max(scale, std::abs(ref));
    std::printf("  %-40s slot %zu: jvp %+.8e  <grad, z> %+.8e\n", label.c_str(), k, tj.derivatives[k], ref);
  }
  EXPECT_GT(scale, 1e-3) << label << ": the loss must move along z for the check to mean anything";
  std::printf("  %-40s max |jvp - <grad, z>| / max |<grad, z>| = %.1e (tolerance %.0e)\n", label.c_str(),
              err / scale, kTol);
  return err / scale;
}

TEST(Jvp, MatchesBackwardProjectionsOnEveryLossAndBase) {
  struct TaskCase { const char* type; bool multi; const char* name; };
  const TaskCase tasks[] = {{"lm", false, "lm"}, {"classification", false, "label words (1 token)"},
                            {"classification", true, "label words (2 and 1 tokens)"}};
  for (DType t : {DType::F32, DType::Q8_0, DType::Q4_1, DType::NF4}) {
    const LlamaModel m(make_random_llama(config_for(t), 11, t), 2);
    for (bool norms : {false, true}) {
      LoraTrainable lora(LoraConfig{4, 8.0f, kAllProjections}, m, TrainableOptions{norms, false});
      randomize(lora, 21);
      for (const auto& tc : tasks) {
        const std::string label = fmt::format("{}, {} base, norms {}", tc.name, dtype_name(t), norms ? "on" : "off");
        EXPECT_LT(jvp_vs_backward(m, *test::make_random_task(tc.type, tc.multi), lora, Distribution::Rademacher,
                                  label),
                  kTol)
            << label;
      }
    }
  }
}

TEST(Jvp, GaussianDirectionsAndFrozenLowRankParts) {
  // An LQ-LoRA base (W ≈ Q + L1·L2 on every projection) with adapters on q and
  // v only: the tangents must run through the frozen factors of the others.
  LlamaWeights w = make_random_llama(config_for(DType::Q8_0), 14, DType::Q8_0);
  test::add_low_rank_parts(w, 15);
  const LlamaModel m(std::move(w), 2);
  LoraTrainable lora(LoraConfig{2, 4.0f, {Proj::Q, Proj::V}}, m, TrainableOptions{true, false});  // the factors' rank
  randomize(lora, 22);
  EXPECT_LT(jvp_vs_backward(m, *test::make_random_task("lm", false), lora, Distribution::Gaussian,
                            "lm, LQ q8_0 base, LoRA q v, gaussian z"),
            kTol);
}

ZoConfig member_config(int q) {
  ZoConfig zc;
  zc.q = q;
  zc.samples = 3;
  return zc;
}

TEST(Jvp, PassesAndThreadsChangeNoBit) {
  // Each tangent's arithmetic is its own (the primal is shared), and every
  // product's rows are independent: one direction per pass, three, or all,
  // on 1 or 3 threads, give the same bits.
  const auto task = test::make_random_task("lm", false);
  std::vector<float> ref;
  for (int threads : {1, 3}) {
    const LlamaModel m(make_random_llama(config_for(DType::Q4_1), 8, DType::Q4_1), threads);
    LoraTrainable lora(LoraConfig{4, 8.0f, kAllProjections}, m, TrainableOptions{true, false});
    randomize(lora, 9);
    for (int per_pass : {0, 1, 3}) {
      const auto r = jvp_member_step(m, *task, lora, member_config(7), JvpConfig{per_pass}, kRunSeed, kDataSeed, 2, 1,
                                     2, 1.0f);
      ASSERT_EQ(r.gradients.size(), 7u);
      if (ref.empty()) ref = r.gradients;
      EXPECT_EQ(r.gradients, ref) << "threads " << threads << ", " << per_pass << " directions per pass";
    }
  }
}

TEST(Jvp, MemberRecordsEqualTheGradientMembers) {
  // The same samples, keys and codec as grad_member_step: its g_k to float
  // rounding, hence the same codes except where g/s lands within rounding of a
  // stochastic-rounding boundary (at most 1 code apart there; none are here).
  for (bool share : {true, false}) {
    const LlamaModel m(make_random_llama(config_for(DType::NF4), 3, DType::NF4), 2);
    const auto task = test::make_random_task("classification", true);
    LoraTrainable lora(LoraConfig{4, 8.0f, kAllProjections}, m, TrainableOptions{true, false});
    randomize(lora, 4);
    ZoConfig zc = member_config(share ? 16 : 4);
    zc.share_samples = share;
    const float scale = 0.02f;
    const auto gr = grad_member_step(m, *task, lora, zc, GradConfig{}, kRunSeed, kDataSeed, 6, 2, 3, scale);
    const auto jv = jvp_member_step(m, *task, lora, zc, JvpConfig{}, kRunSeed, kDataSeed, 6, 2, 3, scale);
    ASSERT_EQ(jv.records.size(), gr.records.size());
    EXPECT_EQ(jv.loss, gr.loss) << "the same samples";
    EXPECT_EQ(jv.tokens, gr.tokens) << "one pass per sample group, as one backward";
    int equal = 0;
    double worst = 0, gmax = 0;
    for (size_t k = 0; k < jv.records.size(); ++k) {
      const Record &a = jv.records[k], &b = gr.records[k];
      EXPECT_EQ(a.kind, RecordKind::Gradient);
      EXPECT_EQ(a.member, b.member);
      EXPECT_EQ(a.slot, b.slot);
      EXPECT_LE(std::abs(int(int8_t(a.code)) - int(int8_t(b.code))), 1) << "slot " << k;
      equal += a.code == b.code;
      worst = std::max(worst, double(std::abs(jv.gradients[k] - gr.gradients[k])));
      gmax = std::max(gmax, double(std::abs(gr.gradients[k])));
    }
    std::printf("  share_samples %d: %d of %zu codes equal; max |g_jvp - g_grad| / max |g| = %.1e\n", share, equal,
                jv.records.size(), worst / gmax);
    EXPECT_EQ(equal, int(jv.records.size()));
    EXPECT_LT(worst / gmax, kTol);
    // The codes carry information: they are not all one value.
    int distinct = 0;
    for (size_t k = 1; k < jv.records.size(); ++k) distinct += jv.records[k].code != jv.records[0].code;
    EXPECT_GT(distinct, 0);
  }
}

TEST(Jvp, RedundancyGroupsMoveAlongTheGroupsKey) {
  // With zo.redundancy 2, member 3 perturbs along member 2's z (key_member), and
  // apply() moves θ along it: the exact members must project onto that z too.
  const LlamaModel m(make_random_llama(config_for(DType::F32), 12), 2);
  const auto task = test::make_random_task("lm", false);
  LoraTrainable lora(LoraConfig{4, 8.0f, {Proj::Q, Proj::V, Proj::Down}}, m, TrainableOptions{false, false});
  randomize(lora, 13);
  ZoConfig zc = member_config(3);
  zc.redundancy = 2;
  zc.eps = 1e-3f;
  zc.exact_gradients = true;
  const auto zo = zo_member_step(m, *task, lora, zc, kRunSeed, kDataSeed, 4, 3, 4, 1.0f);
  const auto jv = jvp_member_step(m, *task, lora, zc, JvpConfig{}, kRunSeed, kDataSeed, 4, 3, 4, 1.0f);
  const auto gr = grad_member_step(m, *task, lora, zc, GradConfig{}, kRunSeed, kDataSeed, 4, 3, 4, 1.0f);
  for (int k = 0; k < zc.q; ++k) {
    const float g = gr.gradients[size_t(k)];
    EXPECT_NEAR(jv.gradients[size_t(k)], g, kTol * std::abs(g));
    // Central differences at ε = 1e-3 in float32: within 2e-2 (tests/optim/grad_step_test.cpp).
    EXPECT_NEAR(zo.gradients[size_t(k)], g, 2e-2 * std::abs(g)) << "slot " << k;
  }
}

TEST(Jvp, RefusesWhatItCannotDifferentiate) {
  const LlamaModel m(make_random_llama(config_for(DType::F32), 1), 1);
  const auto task = test::make_random_task("lm", false);
  const auto examples = all_train(*task);
  LoraTrainable with_norms(LoraConfig{4, 8.0f, {Proj::Q}}, m, TrainableOptions{true, false});
  LoraTrainable without(LoraConfig{4, 8.0f, {Proj::Q}}, m, TrainableOptions{false, false});
  LoraTrainable other_targets(LoraConfig{4, 8.0f, {Proj::V}}, m, TrainableOptions{false, false});
  const PerturbedLora theta(without, Distribution::Rademacher, {Variant{PerturbationKey{}, 0.0f}});
  const LoraDirections good(without, Distribution::Rademacher, keys_of(0, 2));
  EXPECT_THROW(task_jvp(m, *task, examples, theta, good, 0), Error);
  EXPECT_THROW(task_jvp(m, *task, examples, theta, LoraDirections(with_norms, Distribution::Rademacher, keys_of(0, 1)),
                        1),
               Error);
  EXPECT_THROW(task_jvp(m, *task, examples, theta,
                        LoraDirections(other_targets, Distribution::Rademacher, keys_of(0, 1)), 1),
               Error);
  EXPECT_THROW(task_jvp(m, *task, examples, theta, good, 3), Error) << "only 2 directions";
  LoraTrainable full(LoraConfig{}, m, TrainableOptions{false, true});
  EXPECT_THROW(LoraDirections(full, Distribution::Rademacher, keys_of(0, 1)), Error);
  EXPECT_THROW(jvp_member_step(m, *task, without, member_config(2), JvpConfig{-1}, kRunSeed, kDataSeed, 0, 0, 1, 1.0f),
               Error);
}

}  // namespace
}  // namespace zeroth
