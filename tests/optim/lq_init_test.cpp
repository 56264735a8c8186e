// LQ-LoRA bases (W ≈ Q + L1·L2, the factors frozen in the base): the forward
// adds L1·L2 where no adapter trains the projection, the trainable adapters on
// the others start from L1, L2, so θ at step 0 is the base exactly (up to the
// f32 rounding of the √scale split), and a rank mismatch is a clear error.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "models/llama.h"
#include "optim/lora_trainable.h"
#include "tests/core/quant_test_util.h"

namespace zeroth {
namespace {

LlamaWeights with_low_rank(int64_t r) {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 64; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 40;
  c.max_seq_len = 16;
  LlamaWeights w = make_random_llama(c, 7);
  uint32_t seed = 100;
  for (auto& L : w.layers)
    for (int p = 0; p < kProjCount; ++p) {
      const Tensor& W = L.proj(Proj(p));
      L.low_rank_a[size_t(p)] = Tensor::from_vector(test::normal_values(size_t(r * W.dim(1)), seed++, 0.2f), {r, W.dim(1)});
      L.low_rank_b[size_t(p)] = Tensor::from_vector(test::normal_values(size_t(W.dim(0) * r), seed++, 0.2f), {W.dim(0), r});
    }
  return w;
}

std::vector<float> hidden(const LlamaModel& m, const AdapterSet* a) {
  TokenBatch b;
  b.add({1, 5, 9, 3, 22, 17, 8});
  return m.forward_hidden(b, a);
}

TEST(LqLoraInit, FrozenFactorsChangeTheForward) {
  LlamaWeights w = with_low_rank(3);
  LlamaWeights plain = w;
  for (auto& L : plain.layers)
    for (int p = 0; p < kProjCount; ++p) L.low_rank_a[size_t(p)] = L.low_rank_b[size_t(p)] = Tensor();
  const auto a = hidden(LlamaModel(w, 1), nullptr), b = hidden(LlamaModel(plain, 1), nullptr);
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  EXPECT_GT(d, 1e-2);
}

TEST(LqLoraInit, AdaptersStartFromTheFactorsSoThetaIsTheBase) {
  const LlamaModel model(with_low_rank(3), 1);
  const auto base = hidden(model, nullptr);
  for (float alpha : {3.0f, 16.0f})
    for (std::vector<Proj> targets : {std::vector<Proj>{Proj::Q, Proj::V}, std::vector<Proj>{Proj::Q, Proj::K, Proj::V,
                                      Proj::O, Proj::Gate, Proj::Up, Proj::Down}}) {
      LoraConfig cfg;
      cfg.rank = 3;
      cfg.alpha = alpha;
      cfg.targets = targets;
      LoraTrainable t(cfg, model);
      t.initialize(5);
      // B is not zero: the adapters hold L1/√scale, not PEFT's init.
      EXPECT_NE(t.adapters().B(0, Proj::Q)[0], 0.0f);
      const PerturbedLora theta(t, Distribution::Rademacher, {Variant{{}, 0.0f}});
      const auto h = hidden(model, &theta);
      for (size_t i = 0; i < h.size(); ++i) ASSERT_NEAR(h[i], base[i], 1e-4 * (1 + std::fabs(base[i]))) << i;
    }
}

TEST(LqLoraInit, RankMismatchIsAClearError) {
  const LlamaModel model(with_low_rank(3), 1);
  LoraConfig cfg;
  cfg.rank = 8;
  try {
    LoraTrainable t(cfg, model);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("set lora.rank=3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zeroth
