// Norm and full-weight training: the perturbed views a ZO step runs must equal
// a model whose weights were actually set to θ ± εz, and θ itself (σε = 0)
// must reproduce the base model exactly at the start.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/perturb.h"
#include "models/llama.h"
#include "optim/lora_trainable.h"

namespace zeroth {
namespace {

LlamaConfig tiny() {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 64; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 40;
  c.max_seq_len = 16;
  return c;
}

std::vector<float> hidden(const LlamaModel& m, const AdapterSet* a, int variant = 0) {
  TokenBatch b;
  b.add({1, 5, 9, 3, 22, 17, 8}, variant);
  return m.forward_hidden(b, a);
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

TEST(TrainableModes, ThetaStartsAsTheBase) {
  const LlamaWeights w = make_random_llama(tiny(), 3);
  LlamaModel model(w, 1);
  LoraConfig lc;
  for (TrainableOptions opt : {TrainableOptions{true, false}, TrainableOptions{false, true}, TrainableOptions{true, true}}) {
    LoraTrainable t(lc, model, opt);
    t.initialize(7);
    const PerturbedLora theta(t, Distribution::Rademacher, {Variant{}});
    EXPECT_EQ(hidden(model, &theta), hidden(model, nullptr)) << opt.norms << opt.full;
  }
  LoraTrainable full(lc, model, {false, true});
  EXPECT_EQ(full.set().size(), 2 * (32 * 32 + 16 * 32 * 2 + 32 * 32 + 3 * 64 * 32));  // every projection, no LoRA
  LoraTrainable norms(lc, model, {true, false});
  EXPECT_EQ(norms.set().tensors().back().name, "final_norm");
}

// Variant v of the batched forward equals the base model rebuilt with the
// weights θ + σε·z written into it.
TEST(TrainableModes, VariantsEqualAModelWithPerturbedWeights) {
  const LlamaWeights w = make_random_llama(tiny(), 4);
  LlamaModel model(w, 1);
  LoraConfig lc;
  LoraTrainable t(lc, model, {true, true});
  t.initialize(9);
  const PerturbationKey key{42, 3, 1, 0};
  const float se = 0.01f;
  const PerturbedLora variants(t, Distribution::Rademacher, {Variant{key, se}, Variant{key, -se}});

  for (float sign : {1.0f, -1.0f}) {
    LlamaWeights moved = w;
    for (const auto& tt : t.set().tensors()) {
      std::vector<float> z(static_cast<size_t>(tt.n));
      generate_z(key, Distribution::Rademacher, tt.offset, tt.offset + tt.n, z.data());
      Tensor* dst = nullptr;
      for (int l = 0; l < 2 && !dst; ++l) {
        const std::string pre = "layers." + std::to_string(l) + ".";
        if (tt.name == pre + "attn_norm") dst = &moved.layers[size_t(l)].attn_norm;
        if (tt.name == pre + "ffn_norm") dst = &moved.layers[size_t(l)].ffn_norm;
        for (int p = 0; p < kProjCount && !dst; ++p)
          if (tt.name == pre + std::string(proj_name(Proj(p))) + ".weight") dst = &moved.layers[size_t(l)].proj(Proj(p));
      }
      if (tt.name == "final_norm") dst = &moved.final_norm;
      ASSERT_NE(dst, nullptr) << tt.name;
      Tensor copy = Tensor::empty(DType::F32, dst->shape());
      for (int64_t i = 0; i < tt.n; ++i) copy.data<float>()[i] = tt.data[i] + (sign * se) * z[size_t(i)];
      *dst = copy;
    }
    LlamaModel moved_model(moved, 1);
    EXPECT_LT(max_diff(hidden(model, &variants, sign > 0 ? 0 : 1), hidden(moved_model, nullptr)), 1e-6f);
  }
}

TEST(TrainableModes, FullTrainingNeedsAFullPrecisionBase) {
  LlamaConfig c = tiny();
  LlamaModel model(make_random_llama(c, 5, DType::Q8_0), 1);
  EXPECT_THROW(LoraTrainable(LoraConfig{}, model, {false, true}), Error);
}

}  // namespace
}  // namespace zeroth
