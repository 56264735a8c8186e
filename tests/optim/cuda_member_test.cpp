// GPU members (models/llama_cuda.h) against the CPU model they copy:
//   - the forward's hidden states and log-probabilities in every packed format,
//     by normalized error (f32 GEMMs: summation order only; tf32/bf16: their rounding);
//   - the batched-variant forward of a ZO step: θ ± εz formed on the device by
//     perturbed_copy_cuda equals, bit for bit, the same forward fed factors built
//     on the host, and matches the CPU forward; trained norms too;
//   - a zeroth-order member step: the same losses and projected gradients as a
//     CPU member within f32 summation noise, codes within one step;
//   - a mixed run: a CPU member and a GPU member contribute to every step; the
//     CPU replica applies the committed entries on the host, the GPU replica
//     with the CUDA apply kernel on θ in device memory, and their hashes agree
//     after every step;
//   - what the CUDA backend does not run yet says so.
// Skipped without a GPU (a failure under ZEROTH_REQUIRE_GPU=1); without one,
// constructing a GPU model must fail with a message that says why.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "models/llama.h"
#include "models/llama_cuda.h"
#include "models/tasks/task.h"
#include "core/device_array.h"
#include "optim/lora_trainable.h"
#include "optim/update.h"
#include "optim/zo_step.h"
#include "tests/core/cuda_test_util.h"
#include "tests/optim/member_step_test_util.h"

namespace zeroth {
namespace {

using test::bit_mismatches;
using test::normalized_error;

constexpr int64_t kVocab = 300;

// Block formats need k a multiple of 64 (NF4's block): dim 64, hidden 128.
LlamaConfig small_config() {
  LlamaConfig c;
  c.dim = 64; c.hidden_dim = 128; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = kVocab;
  c.max_seq_len = 64;
  return c;
}

// Three sequences of 9, 17 and 5 tokens, under variants 0, 1, 2 (or all 0).
TokenBatch three_sequences(bool variants) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(kVocab) - 1);
  TokenBatch b;
  int32_t v = 0;
  for (int len : {9, 17, 5}) {
    std::vector<int32_t> s(static_cast<size_t>(len));
    for (auto& t : s) t = tok(rng);
    b.add(s, variants ? v++ : 0);
  }
  return b;
}

// LoRA of rank 4 (alpha 8) on `targets`.
LoraConfig rank4(std::vector<Proj> targets) {
  LoraConfig lc;
  lc.rank = 4;
  lc.alpha = 8;
  lc.targets = std::move(targets);
  return lc;
}

std::vector<int32_t> random_targets(size_t n) {
  std::mt19937 rng(8);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(kVocab) - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = tok(rng);
  return t;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return a.size() == b.size() ? m : INFINITY;
}

TEST(LlamaCuda, ForwardAndLogprobsMatchCpuInEveryFormat) {
  ZEROTH_REQUIRE_GPU();
  const TokenBatch b = three_sequences(false);
  std::vector<int64_t> rows(size_t(b.rows()));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  const auto targets = random_targets(rows.size());
  const std::vector<int32_t> columns = {3, 17, 299};
  for (DType t : {DType::F32, DType::BF16, DType::Q8_0, DType::Q4_0, DType::NF4, DType::I4_B32, DType::I8_B64}) {
    const LlamaModel cpu(make_random_llama(small_config(), 5, t), 1);
    const LlamaCuda gpu(cpu);
    const auto hc = cpu.forward_hidden(b), hg = gpu.forward_hidden(b);
    EXPECT_LE(normalized_error(hg, hc), 1e-4) << dtype_name(t);
    // The output layer on the device, from the same hidden states.
    EXPECT_LE(max_abs_diff(gpu.token_logprobs(hc, rows, targets), cpu.token_logprobs(hc, rows, targets)), 1e-4)
        << dtype_name(t);
    EXPECT_LE(max_abs_diff(gpu.column_logprobs(hc, rows, columns), cpu.column_logprobs(hc, rows, columns)), 1e-4)
        << dtype_name(t);
  }
}

TEST(LlamaCuda, TensorCorePrecisionsStayWithinTheirRounding) {
  ZEROTH_REQUIRE_GPU();
  const TokenBatch b = three_sequences(false);
  const LlamaModel cpu(make_random_llama(small_config(), 6, DType::Q8_0), 1);
  const auto hc = cpu.forward_hidden(b);
  for (auto [p, tol] : {std::pair{GemmPrecision::TF32, 5e-3}, {GemmPrecision::BF16, 3e-2}}) {
    LlamaCudaOptions o;
    o.precision = p;
    const LlamaCuda gpu(cpu, o);
    EXPECT_LE(normalized_error(gpu.forward_hidden(b), hc), tol) << gemm_precision_name(p);
  }
}

// The adapters of `inner`, but without perturbed_factors: the GPU model then
// builds every variant's factors on the host and copies them over.
class HostBuilt : public AdapterSet {
 public:
  explicit HostBuilt(const AdapterSet& inner) : in_(inner) {}
  bool has(int l, Proj p) const override { return in_.has(l, p); }
  LoraFactors get(int l, Proj p, int v, float* s) const override { return in_.get(l, p, v, s); }
  size_t scratch_floats(int l, Proj p) const override { return in_.scratch_floats(l, p); }
  bool overrides_norms() const override { return in_.overrides_norms(); }
  const float* norm(int l, NormSlot s, int v, float* sc) const override { return in_.norm(l, s, v, sc); }

 private:
  const AdapterSet& in_;
};

TEST(LlamaCuda, PerturbedVariantsOnTheDeviceEqualHostBuiltOnes) {
  ZEROTH_REQUIRE_GPU();
  const LlamaModel cpu(make_random_llama(small_config(), 7, DType::Q4_0), 1);
  const LlamaCuda gpu(cpu);
  const LoraConfig lc = rank4({Proj::Q, Proj::V, Proj::Gate, Proj::Down});
  for (bool norms : {false, true})
    for (Distribution d : {Distribution::Rademacher, Distribution::Gaussian}) {
      TrainableOptions to;
      to.norms = norms;
      LoraTrainable lora(lc, cpu, to);
      lora.initialize(11);
      test::make_b_nonzero(lora, 12);
      const PerturbationKey key{11, 3, 1, 0};
      const PerturbedLora variants(lora, d, {Variant{key, 1e-2f}, Variant{key, -1e-2f}, Variant{}});
      const TokenBatch b = three_sequences(true);
      const auto on_device = gpu.forward_hidden(b, &variants);
      const HostBuilt host_built(variants);
      EXPECT_EQ(bit_mismatches(on_device, gpu.forward_hidden(b, &host_built)), 0)
          << distribution_name(d) << (norms ? " with norms" : "");
      EXPECT_LE(normalized_error(on_device, cpu.forward_hidden(b, &variants)), 1e-4)
          << distribution_name(d) << (norms ? " with norms" : "");
      // One sequence under the three variants: +σε and −σε move its hidden
      // states away from θ's (the perturbation reached the device), θ's equal
      // the same forward without variants.
      TokenBatch same;
      for (int32_t v = 0; v < 3; ++v) same.add(b.tokens, v);
      const auto h3 = gpu.forward_hidden(same, &variants);
      const size_t part = h3.size() / 3;
      const std::vector<float> plus(h3.begin(), h3.begin() + std::ptrdiff_t(part)),
          minus(h3.begin() + std::ptrdiff_t(part), h3.begin() + std::ptrdiff_t(2 * part)),
          zero(h3.begin() + std::ptrdiff_t(2 * part), h3.end());
      EXPECT_GT(max_abs_diff(plus, zero), 0.0);
      EXPECT_GT(max_abs_diff(minus, zero), 0.0);
      TokenBatch alone;
      alone.add(b.tokens, 0);
      const PerturbedLora theta_only(lora, d, {Variant{}});
      EXPECT_EQ(bit_mismatches(zero, gpu.forward_hidden(alone, &theta_only)), 0);
    }
}

TEST(LlamaCuda, ZoMemberStepAgreesWithCpuMember) {
  ZEROTH_REQUIRE_GPU();
  const LlamaModel cpu(make_random_llama(small_config(), 8, DType::NF4), 1);
  const LlamaCuda gpu(cpu);
  const auto task = make_task_from_examples(TaskConfig{}, test::random_documents(16, 3, kVocab), {}, {});
  LoraTrainable lora(rank4({Proj::Q, Proj::V}), cpu);
  lora.initialize(21);
  test::make_b_nonzero(lora, 22);
  ZoConfig zc;
  zc.q = 3;
  zc.samples = 4;
  zc.eps = 1e-2f;
  for (uint64_t step : {0, 1, 2}) {
    const MemberStepResult rc = zo_member_step(cpu, *task, lora, zc, 21, 5, step, 1, 2, 0.5f);
    const MemberStepResult rg = zo_member_step(gpu, *task, lora, zc, 21, 5, step, 1, 2, 0.5f);
    ASSERT_EQ(rc.gradients.size(), rg.gradients.size());
    EXPECT_NEAR(rg.loss, rc.loss, 1e-4) << "step " << step;
    EXPECT_EQ(rg.tokens, rc.tokens);
    for (size_t k = 0; k < rc.gradients.size(); ++k)
      EXPECT_NEAR(rg.gradients[k], rc.gradients[k], 1e-2 * std::max(1.0f, std::fabs(rc.gradients[k])))
          << "step " << step << " slot " << k;
    ASSERT_EQ(rc.records.size(), rg.records.size());
    for (size_t k = 0; k < rc.records.size(); ++k) {
      EXPECT_EQ(rc.records[k].slot, rg.records[k].slot);
      // Codes are int8 values in a byte: compare them as such (0 and −1 are one step apart).
      EXPECT_LE(std::abs(int(int8_t(rc.records[k].code)) - int(int8_t(rg.records[k].code))), 1) << "slot " << k;
    }
  }
}

TEST(LlamaCuda, MixedCpuAndGpuMembersKeepOneTheta) {
  ZEROTH_REQUIRE_GPU();
  const LlamaModel cpu(make_random_llama(small_config(), 10, DType::Q8_0), 1);
  const LlamaCuda gpu(cpu);
  const auto task = make_task_from_examples(TaskConfig{}, test::random_documents(16, 4, kVocab), {}, {});
  const LoraConfig lc = rank4({Proj::Q, Proj::V, Proj::Up});
  TrainableOptions to;
  to.norms = true;
  // Two replicas of θ: the CPU member's on the host, the GPU member's in device
  // memory (its host copy is only a mirror, refreshed for its forward and its hash).
  LoraTrainable theta_cpu(lc, cpu, to), theta_gpu(lc, cpu, to);
  theta_cpu.initialize(31);
  theta_gpu.initialize(31);
  OptimizerConfig oc;
  oc.lr = 5e-3f;
  oc.weight_decay = 0.1f;
  oc.run_seed = 31;
  ZerothOrderOptimizer opt_cpu(oc, theta_cpu.set()), opt_gpu(oc, theta_gpu.set());
  std::vector<DeviceArray<float>> device;
  std::vector<TrainableSpan> spans;
  for (const auto& t : theta_gpu.set().tensors()) {
    device.emplace_back(std::span<const float>(t.data, size_t(t.n)));
    spans.push_back({device.back().data(), t.n, t.offset});
  }
  ZoConfig zc;
  zc.q = 2;
  zc.samples = 3;
  const std::string theta0 = theta_cpu.set().hash().hex();
  for (uint64_t step = 0; step < 6; ++step) {
    StepEntry e;
    e.step = step;
    e.scale = 0.05f;
    e.lr = oc.lr;
    for (const auto& r : zo_member_step(cpu, *task, theta_cpu, zc, 31, 7, step, 0, 2, e.scale).records)
      e.records.push_back(r);
    for (const auto& r : zo_member_step(gpu, *task, theta_gpu, zc, 31, 7, step, 1, 2, e.scale).records)
      e.records.push_back(r);
    ASSERT_EQ(e.records.size(), 4u) << "step " << step;
    opt_cpu.apply(e);
    opt_gpu.apply_cuda(e, spans);
    for (size_t i = 0; i < spans.size(); ++i) {
      const auto& t = theta_gpu.set().tensors()[i];
      cuda_copy_d2h(t.data, spans[i].data, size_t(t.n) * sizeof(float));
    }
    ASSERT_EQ(theta_gpu.set().hash().hex(), theta_cpu.set().hash().hex()) << "replicas differ after step " << step;
  }
  EXPECT_NE(theta_cpu.set().hash().hex(), theta0);
  // Device tensors that are not θ's are refused; the momentum rule keeps θ on the host.
  EXPECT_THROW(opt_gpu.apply_cuda(StepEntry{}, std::span<const TrainableSpan>(spans).first(1)), Error);
  OptimizerConfig om = oc;
  om.rule = UpdateRule::Momentum;
  ZerothOrderOptimizer opt_m(om, theta_gpu.set());
  EXPECT_THROW(opt_m.apply_cuda(StepEntry{}, spans), Error);
}

TEST(LlamaCuda, WhatIsNotOnCudaSaysSo) {
  ZEROTH_REQUIRE_GPU();
  const LlamaModel cpu(make_random_llama(small_config(), 9, DType::F32), 1);
  const LlamaCuda gpu(cpu);
  TrainableOptions full;
  full.full = true;
  LoraTrainable lora(LoraConfig{}, cpu, full);
  lora.initialize(1);
  const PerturbedLora theta(lora, Distribution::Rademacher, {Variant{}});
  try {
    gpu.forward_hidden(three_sequences(false), &theta);
    FAIL() << "full-weight training ran on CUDA";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trainable.full"), std::string::npos) << e.what();
  }
  AdapterGradients g;
  EXPECT_THROW(gpu.backward(three_sequences(false), theta, {}, g), Error);
  EXPECT_FALSE(gpu.describe().empty());
}

TEST(LlamaCudaWithoutGpu, ConstructionSaysWhy) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is usable here: " << cuda_describe();
  const LlamaModel cpu(make_random_llama(small_config(), 5, DType::F32), 1);
  try {
    LlamaCuda gpu(cpu);
    FAIL() << "a GPU model was made without a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("GPU"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(cuda_describe()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zeroth
