// LlamaModel::backward and task_gradient on a tiny random model with LoRA on
// every projection and trainable norms: the gradient against finite
// differences of the loss zeroth computes (BatchScorer, the float32 forward),
// for the LM loss and the label-word loss (one- and multi-token words), on f32
// and quantized bases; checkpointing and thread count change no bit.
//
// The forward is float32, so the finite differences are directional: along a
// random ±1 direction z over one group of tensors, (L(θ+hz) − L(θ−hz)) / 2h
// at h = 2e-3 and 1e-3, Richardson-extrapolated to cancel the h² term, against
// ⟨∇L, z⟩. The loss is accumulated in double; its float32 rounding (~1e-7 · L)
// divided by 2h bounds the agreement at about 1e-3 of |⟨∇L, z⟩|: the tolerance
// is 5e-3 relative (measured values are printed). The ops themselves are checked in float64 in
// tests/core/backward_ops_test.cpp.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "models/llama.h"
#include "models/tasks/task.h"
#include "models/tasks/task_gradient.h"
#include "tests/models/task_test_util.h"

namespace zeroth {
namespace {

LlamaConfig tiny() {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 64; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 50;
  c.max_seq_len = 32;
  return c;
}

CausalLM::ProjectionDims dims_of(const LlamaConfig& c) {
  return {{{c.dim, c.q_dim()}, {c.dim, c.kv_dim()}, {c.dim, c.kv_dim()}, {c.q_dim(), c.dim},
           {c.dim, c.hidden_dim}, {c.dim, c.hidden_dim}, {c.hidden_dim, c.dim}}};
}

// LoRA on every projection plus (optionally) trained norm gains, all variants alike.
class TestAdapters : public AdapterSet {
 public:
  TestAdapters(const LlamaModel& m, bool norms, uint32_t seed,
               std::vector<Proj> targets = {Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down})
      : lora_(LoraConfig{4, 8.0f, std::move(targets)}, int(m.config().n_layers), dims_of(m.config())),
        train_norms_(norms) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 0.2f);
    for (int l = 0; l < lora_.n_layers(); ++l)
      for (int p = 0; p < kProjCount; ++p) {
        if (!lora_.has(l, Proj(p))) continue;
        for (float& x : lora_.A(l, Proj(p))) x = d(rng);
        for (float& x : lora_.B(l, Proj(p))) x = d(rng);  // B ≠ 0 so that dA is not zero
      }
    if (norms) {
      for (int l = 0; l < lora_.n_layers(); ++l)
        for (NormSlot s : {NormSlot::Attention, NormSlot::Ffn}) norms_.push_back(m.norm_weight(l, s).to_float_vector());
      norms_.push_back(m.norm_weight(lora_.n_layers(), NormSlot::Final).to_float_vector());
    }
  }
  bool has(int l, Proj p) const override { return lora_.has(l, p); }
  LoraFactors get(int l, Proj p, int v, float* s) const override { return lora_.get(l, p, v, s); }
  size_t scratch_floats(int, Proj) const override { return 0; }
  bool overrides_norms() const override { return train_norms_; }
  const float* norm(int l, NormSlot s, int, float*) const override { return norms_[index(l, s)].data(); }

  // Every trainable float, grouped: A factors, B factors, norm gains.
  std::vector<std::vector<float*>> groups() {
    std::vector<std::vector<float*>> g(3);
    for (int l = 0; l < lora_.n_layers(); ++l)
      for (int p = 0; p < kProjCount; ++p) {
        for (float& x : lora_.A(l, Proj(p))) g[0].push_back(&x);
        for (float& x : lora_.B(l, Proj(p))) g[1].push_back(&x);
      }
    for (auto& n : norms_)
      for (float& x : n) g[2].push_back(&x);
    return g;
  }
  // The same floats' gradients, in the same order.
  static std::vector<std::vector<float>> grad_groups(const AdapterGradients& gr, int layers) {
    std::vector<std::vector<float>> g(3);
    for (int l = 0; l < layers; ++l)
      for (int p = 0; p < kProjCount; ++p) {
        g[0].insert(g[0].end(), gr.dA(l, Proj(p)).begin(), gr.dA(l, Proj(p)).end());
        g[1].insert(g[1].end(), gr.dB(l, Proj(p)).begin(), gr.dB(l, Proj(p)).end());
      }
    for (const auto& n : gr.norms) g[2].insert(g[2].end(), n.begin(), n.end());
    return g;
  }

 private:
  size_t index(int l, NormSlot s) const {
    return s == NormSlot::Final ? norms_.size() - 1 : size_t(l) * 2 + (s == NormSlot::Ffn ? 1 : 0);
  }
  LoraAdapters lora_;
  bool train_norms_;
  std::vector<std::vector<float>> norms_;
};

double scored_loss(const LlamaModel& m, const Task& task, const AdapterSet& a) {
  BatchScorer s(task);
  for (const auto& e : task.examples(Split::Train)) s.add(e, 0);
  return s.run(m, &a).loss[0];
}

std::vector<const Example*> all_train(const Task& task) {
  std::vector<const Example*> out;
  for (const auto& e : task.examples(Split::Train)) out.push_back(&e);
  return out;
}

// Directional finite differences per group against ⟨∇L, z⟩; returns the worst relative error.
double directional_check(const LlamaModel& m, const Task& task, TestAdapters& a, const char* label) {
  const TaskGradient tg = task_gradient(m, task, all_train(task), a);
  const double l0 = scored_loss(m, task, a);
  EXPECT_NEAR(tg.loss, l0, 1e-6 * std::abs(l0)) << "the backward's forward scores the loss BatchScorer does";
  const auto grads = TestAdapters::grad_groups(tg.grads, int(m.config().n_layers));
  auto params = a.groups();
  const char* names[3] = {"lora_A", "lora_B", "norms"};
  double worst = 0;
  std::mt19937 rng(7);
  for (size_t g = 0; g < 3; ++g) {
    if (params[g].empty()) continue;
    EXPECT_EQ(params[g].size(), grads[g].size());
    std::vector<float> z(params[g].size());
    for (auto& x : z) x = (rng() & 1) ? 1.0f : -1.0f;
    double analytic = 0;
    for (size_t i = 0; i < z.size(); ++i) analytic += double(grads[g][i]) * z[i];
    // Central differences at h and h/2, extrapolated (Richardson) to cancel
    // the h² term: a ±1 step over a whole group is long (h·√n), so curvature
    // would otherwise dominate.
    std::vector<float> saved(z.size());
    for (size_t i = 0; i < z.size(); ++i) saved[i] = *params[g][i];
    auto central = [&](float h) {
      for (size_t i = 0; i < z.size(); ++i) *params[g][i] = saved[i] + h * z[i];
      const double lp = scored_loss(m, task, a);
      for (size_t i = 0; i < z.size(); ++i) *params[g][i] = saved[i] - h * z[i];
      const double lm = scored_loss(m, task, a);
      for (size_t i = 0; i < z.size(); ++i) *params[g][i] = saved[i];
      return (lp - lm) / (2.0 * double(h));
    };
    const float h = 2e-3f;
    const double numeric = (4.0 * central(h / 2) - central(h)) / 3.0;
    const double err = std::abs(numeric - analytic) / std::abs(analytic);
    std::printf("  %-34s %-6s <grad, z> = %+.6e  finite difference %+.6e  rel err %.1e\n", label, names[g],
                analytic, numeric, err);
    worst = std::max(worst, err);
  }
  return worst;
}

constexpr double kDirTol = 5e-3;

TEST(Backward, LanguageModelLossMatchesFiniteDifferences) {
  LlamaModel m(make_random_llama(tiny(), 1), 2);
  TestAdapters a(m, true, 3);
  const auto task = test::make_random_task("lm", false);
  EXPECT_LT(directional_check(m, *task, a, "lm, f32 base"), kDirTol);
}

TEST(Backward, LabelWordLossMatchesFiniteDifferences) {
  LlamaModel m(make_random_llama(tiny(), 2), 2);
  TestAdapters a(m, true, 4);
  EXPECT_LT(directional_check(m, *test::make_random_task("classification", false), a, "label words (1 token), f32"),
            kDirTol);
  EXPECT_LT(directional_check(m, *test::make_random_task("classification", true), a, "label words (2 and 1 tokens), f32"),
            kDirTol);
}

TEST(Backward, QuantizedBaseMatchesFiniteDifferences) {
  for (DType t : {DType::Q8_0, DType::Q4_1, DType::NF4}) {
    LlamaConfig c = tiny();
    c.dim = 64;  // NF4 rows are multiples of 64
    LlamaModel m(make_random_llama(c, 5, t), 2);
    TestAdapters a(m, false, 6);
    const std::string label = "lm, " + std::string(dtype_name(t)) + " base";
    EXPECT_LT(directional_check(m, *test::make_random_task("lm", false), a, label.c_str()), kDirTol);
  }
}

// An LQ-LoRA base (W ≈ Q + L1·L2 on every projection) with adapters on q and v
// only: the backward must carry dx through the frozen low-rank parts of the
// other projections, or every gradient below them is wrong.
TEST(Backward, FrozenLowRankPartsOfTheBaseMatchFiniteDifferences) {
  LlamaWeights w = make_random_llama(tiny(), 14);
  test::add_low_rank_parts(w, 15);
  const LlamaModel with(w, 2);
  const auto task = test::make_random_task("lm", false);
  TestAdapters a(with, false, 16, {Proj::Q, Proj::V});
  // The frozen parts change the model (else the check below would prove nothing).
  LlamaWeights plain = w;
  for (auto& layer : plain.layers)
    for (int p = 0; p < kProjCount; ++p) layer.low_rank_a[size_t(p)] = layer.low_rank_b[size_t(p)] = Tensor();
  EXPECT_GT(std::abs(scored_loss(with, *task, a) - scored_loss(LlamaModel(plain, 2), *task, a)), 1e-3);
  EXPECT_LT(directional_check(with, *task, a, "lm, LQ base (frozen L1 L2), LoRA q v"), kDirTol);
}

TEST(Backward, CheckpointingAndThreadsChangeNoBit) {
  const auto task = test::make_random_task("lm", false);
  AdapterGradients ref;
  double ref_loss = 0;
  for (int threads : {1, 3})
    for (bool ckpt : {false, true}) {
      LlamaModel m(make_random_llama(tiny(), 8, DType::Q8_0), threads);
      TestAdapters a(m, true, 9);
      BackwardOptions opt;
      opt.checkpoint = ckpt;
      const TaskGradient tg = task_gradient(m, *task, all_train(*task), a, opt);
      if (ref.A.empty()) {
        ref = tg.grads;
        ref_loss = tg.loss;
        continue;
      }
      EXPECT_EQ(tg.loss, ref_loss);
      EXPECT_EQ(tg.grads.A, ref.A) << "threads " << threads << " checkpoint " << ckpt;
      EXPECT_EQ(tg.grads.B, ref.B);
      EXPECT_EQ(tg.grads.norms, ref.norms);
    }
}

TEST(Backward, GradientsAccumulateAcrossCalls) {
  LlamaModel m(make_random_llama(tiny(), 10), 1);
  TestAdapters a(m, false, 11);
  const auto task = test::make_random_task("lm", false);
  TaskGradient once = task_gradient(m, *task, all_train(*task), a);
  AdapterGradients twice = once.grads;
  TokenBatch b;
  for (const auto& e : task->examples(Split::Train)) b.add(e.tokens);
  // A loss that is zero everywhere adds nothing; the buffers keep their shapes.
  m.backward(b, a, [](const std::vector<float>&, std::vector<float>&) { return 0.0; }, twice);
  EXPECT_EQ(twice.A, once.grads.A);
  twice.clear();
  for (const auto& g : twice.A)
    for (float x : g) ASSERT_EQ(x, 0.0f);
}

TEST(Backward, RejectsWhatItCannotDifferentiate) {
  LlamaModel m(make_random_llama(tiny(), 12), 1);
  TestAdapters a(m, false, 13);
  TokenBatch b;
  b.add({1, 2, 3}, 0);
  b.add({4, 5}, 1);
  AdapterGradients g;
  auto noop = [](const std::vector<float>&, std::vector<float>&) { return 0.0; };
  EXPECT_THROW(m.backward(b, a, noop, g), Error);  // two variants
  struct FullWeights : TestAdapters {
    using TestAdapters::TestAdapters;
    bool overrides_weights() const override { return true; }
  } full(m, false, 14);
  TokenBatch one;
  one.add({1, 2, 3});
  EXPECT_THROW(m.backward(one, full, noop, g), Error);
}

}  // namespace
}  // namespace zeroth
