// The gradient member's step (optim/grad_step.h) against the ZO member's on a
// tiny random LLaMA: same samples, same keys, and as ε → 0 the ZO estimate
// (L(θ+εz) − L(θ−εz)) / 2ε tends to the exact projection ⟨∇L, z⟩.
//
// Tolerance: the ZO side runs the float32 forward, so at ε = 1e-3 its g has
// rounding noise ~1e-7·L/ε (≤ 1e-3 absolute) and a curvature term O(ε²); the
// projections here are 0.03…0.8, so the two must agree to 2e-2 relative
// (measured: ≤ 3e-3, printed) — and must disagree beyond that when the slot's key or
// samples differ (the test would notice a wrong stream or a wrong draw).
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "models/llama.h"
#include "models/tasks/task.h"
#include "optim/codec.h"
#include "optim/grad_step.h"
#include "optim/lora_trainable.h"
#include "optim/zo_step.h"
#include "tests/models/task_test_util.h"
#include "tests/optim/member_step_test_util.h"

namespace zeroth {
namespace {

constexpr int64_t kVocab = 300;
constexpr uint64_t kRunSeed = 77, kDataSeed = 5;

struct Fixture {
  LlamaModel model{make_random_llama(test::task_llama_config(kVocab), 31), 1};
  std::unique_ptr<Task> task = make_task_from_examples(TaskConfig{}, test::random_documents(11, 3, kVocab), {}, {});
  LoraTrainable lora;
  explicit Fixture(bool norms)
      : lora(LoraConfig{4, 8.0f, {Proj::Q, Proj::V, Proj::Down}}, model, TrainableOptions{norms, false}) {
    lora.initialize(kRunSeed);
    test::make_b_nonzero(lora, 9);  // B ≠ 0: A's perturbations move the loss
  }
};

TEST(GradStep, ExactProjectionsMatchZerothOrderEstimates) {
  for (bool norms : {false, true}) {
    Fixture f(norms);
    ZoConfig zc;
    zc.q = 4;
    zc.samples = 3;
    zc.eps = 1e-3f;
    zc.exact_gradients = true;
    const uint32_t member = 2, members = 3;
    const uint64_t step = 5;
    const auto zo = zo_member_step(f.model, *f.task, f.lora, zc, kRunSeed, kDataSeed, step, member, members, 1.0f);
    const auto gr = grad_member_step(f.model, *f.task, f.lora, zc, GradConfig{}, kRunSeed, kDataSeed, step, member,
                                     members, 1.0f);
    ASSERT_EQ(gr.records.size(), size_t(zc.q));
    EXPECT_NEAR(gr.loss, zo.loss, 1e-3 * zo.loss) << "the same samples";
    double worst = 0;
    for (int k = 0; k < zc.q; ++k) {
      const double rel = std::abs(gr.gradients[size_t(k)] - zo.gradients[size_t(k)]) / std::abs(gr.gradients[size_t(k)]);
      std::printf("  norms %d slot %d: exact <grad, z> %+.6f  ZO (eps 1e-3) %+.6f  rel diff %.1e\n", norms, k,
                  gr.gradients[size_t(k)], zo.gradients[size_t(k)], rel);
      worst = std::max(worst, rel);
      EXPECT_EQ(gr.records[size_t(k)].kind, RecordKind::Gradient);
      EXPECT_EQ(zo.records[size_t(k)].kind, RecordKind::ZerothOrder);
      EXPECT_EQ(gr.records[size_t(k)].slot, uint32_t(k));
      EXPECT_EQ(gr.records[size_t(k)].member, member);
    }
    EXPECT_LT(worst, 2e-2);
    // Another member's keys give other projections: the agreement is not an accident of scale.
    const auto other = grad_member_step(f.model, *f.task, f.lora, zc, GradConfig{}, kRunSeed, kDataSeed, step, 0,
                                        members, 1.0f);
    int far = 0;
    for (int k = 0; k < zc.q; ++k)
      far += std::abs(other.gradients[size_t(k)] - zo.gradients[size_t(k)]) > 0.1 * std::abs(zo.gradients[size_t(k)]);
    EXPECT_GE(far, zc.q - 1);
  }
}

TEST(GradStep, RecordsAreOneByteCodesOfTheProjection) {
  Fixture f(false);
  ZoConfig zc;
  zc.q = 6;
  zc.samples = 2;
  const float scale = 0.01f;
  const auto gr = grad_member_step(f.model, *f.task, f.lora, zc, GradConfig{true}, kRunSeed, kDataSeed, 1, 0, 2, scale);
  ASSERT_EQ(gr.records.size(), size_t(zc.q));
  for (int k = 0; k < zc.q; ++k) {
    const PerturbationKey key{kRunSeed, 1, 0, uint32_t(k)};
    EXPECT_EQ(gr.records[size_t(k)].code, encode_gradient(gr.gradients[size_t(k)], scale, key).code);
    EXPECT_FALSE(gr.records[size_t(k)].exact);
  }
}

TEST(GradStep, UnsharedSamplesRunOneBackwardPerSlot) {
  Fixture f(false);
  ZoConfig zc;
  zc.q = 2;
  zc.samples = 2;
  zc.share_samples = false;
  zc.eps = 1e-3f;
  zc.exact_gradients = true;
  const auto zo = zo_member_step(f.model, *f.task, f.lora, zc, kRunSeed, kDataSeed, 3, 1, 2, 1.0f);
  const auto gr = grad_member_step(f.model, *f.task, f.lora, zc, GradConfig{}, kRunSeed, kDataSeed, 3, 1, 2, 1.0f);
  for (int k = 0; k < zc.q; ++k)
    EXPECT_NEAR(gr.gradients[size_t(k)], zo.gradients[size_t(k)], 2e-2 * std::abs(gr.gradients[size_t(k)]));
}

TEST(GradStep, ProjectionRegeneratesTheSameZ) {
  // ⟨e_i, z⟩ = z_i: the projection reads the stream at the same indices as
  // PerturbedLora and apply() (every 1000th index of a 20000-long space).
  for (Distribution d : {Distribution::Rademacher, Distribution::Gaussian}) {
    const PerturbationKey key{3, 4, 5, 6};
    std::vector<float> g(20000, 0.0f);
    for (size_t i = 0; i < g.size(); i += 997) {
      g[i] = 1.0f;
      EXPECT_EQ(float(project_gradient(g, key, d)), z_at(key, d, int64_t(i)));
      g[i] = 0.0f;
    }
  }
}

TEST(GradStep, FlattenFollowsTheTrainableSetOrder) {
  Fixture f(true);
  AdapterGradients g;
  const int L = f.model.n_layers();
  g.A.resize(size_t(L) * kProjCount);
  g.B.resize(g.A.size());
  g.norms.assign(size_t(2 * L + 1), std::vector<float>(size_t(f.model.hidden_size())));
  // Each tensor's gradient holds its own global offset + position, so the flat
  // vector must read 0, 1, 2, … if every tensor sits at its offset.
  for (const auto& t : f.lora.set().tensors()) {
    std::vector<float>* dst = nullptr;
    for (int l = 0; l < L; ++l) {
      for (Proj p : {Proj::Q, Proj::V, Proj::Down}) {
        if (t.name == fmt::format("layers.{}.{}.lora_A", l, proj_name(p))) dst = &g.dA(l, p);
        if (t.name == fmt::format("layers.{}.{}.lora_B", l, proj_name(p))) dst = &g.dB(l, p);
      }
      if (t.name == fmt::format("layers.{}.attn_norm", l)) dst = &g.dnorm(l, NormSlot::Attention);
      if (t.name == fmt::format("layers.{}.ffn_norm", l)) dst = &g.dnorm(l, NormSlot::Ffn);
    }
    if (t.name == "final_norm") dst = &g.dnorm(L, NormSlot::Final);
    ASSERT_NE(dst, nullptr) << t.name;
    dst->resize(size_t(t.n));
    for (int64_t i = 0; i < t.n; ++i) (*dst)[size_t(i)] = float(t.offset + i);
  }
  const auto flat = flatten_gradient(f.lora, g);
  ASSERT_EQ(int64_t(flat.size()), f.lora.set().size());
  for (size_t i = 0; i < flat.size(); ++i) ASSERT_EQ(flat[i], float(i));
  g.dA(0, Proj::Q).pop_back();
  EXPECT_THROW(flatten_gradient(f.lora, g), Error);
}

}  // namespace
}  // namespace zeroth
