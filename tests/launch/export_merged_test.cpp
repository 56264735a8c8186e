// `zeroth export --merged` of a full-mode run (launch/export_peft.h): the HF
// directory holds θ's trained weights, norms, token embedding and (untied)
// output layer, so the model loaded back from it computes what the run's θ
// computes through its adapters.
#include <cstdint>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/perturb.h"
#include "launch/export_peft.h"
#include "models/loaders/llama_loader.h"
#include "models/llama.h"
#include "optim/lora_trainable.h"
#include "tests/test_util.h"

namespace zeroth::cli {
namespace {

LlamaConfig tiny(bool tied) {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 64; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 40;
  c.max_seq_len = 16;
  c.tie_embeddings = tied;
  c.rope_interleaved = false;  // HF's layout: the export writes q/k as they are
  return c;
}

// Rows 0..n-1.
std::vector<int64_t> rows(int64_t n) {
  std::vector<int64_t> r;
  for (int64_t i = 0; i < n; ++i) r.push_back(i);
  return r;
}

// A "trained" full-mode θ (every tensor moved off the base by 0.05·z), exported
// merged and loaded back, gives bit for bit the hidden states and logits of the
// base model run through θ as adapters: the same f32 values through the same
// kernels (the layout needs no q/k permutation here).
TEST(ExportMerged, FullModeWritesTheTrainedEmbeddingAndOutput) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    const LlamaWeights w = make_random_llama(tiny(tied), 21);
    LlamaModel model(w, 1);
    LoraTrainable t(LoraConfig{}, model, {true, true});
    t.initialize(1);
    for (const auto& tt : t.set().tensors()) {
      std::vector<float> z(static_cast<size_t>(tt.n));
      generate_z({9, 1, 0, 0}, Distribution::Rademacher, tt.offset, tt.offset + tt.n, z.data());
      for (int64_t i = 0; i < tt.n; ++i) tt.data[i] += 0.05f * z[size_t(i)];
    }
    const PerturbedLora theta(t, Distribution::Rademacher, {Variant{}});
    const auto dir = test::temp_dir(std::string("export-merged-") + (tied ? "tied" : "untied"));
    export_merged(dir.string(), model, theta);

    const LlamaWeights back = load_llama_weights(dir.string());
    EXPECT_EQ(back.config.tie_embeddings, tied);
    const std::vector<float> emb = back.tok_embeddings.to_float_vector();
    EXPECT_EQ(emb, std::vector<float>(t.embedding(), t.embedding() + 40 * 32));
    const std::vector<float> out = back.output.to_float_vector();
    EXPECT_EQ(out, std::vector<float>(t.output(), t.output() + 40 * 32));
    EXPECT_NE(emb, w.tok_embeddings.to_float_vector());  // the trained embedding, not the base's
    if (!tied) {
      EXPECT_NE(out, w.output.to_float_vector());
    }

    LlamaModel merged(back, 1);
    TokenBatch b;
    b.add({1, 5, 9, 3, 22, 17, 8}, 0);
    const auto h = model.forward_hidden(b, &theta);
    const auto hm = merged.forward_hidden(b, nullptr);
    EXPECT_EQ(h, hm);
    EXPECT_EQ(model.logits(h, rows(b.rows()), &b, &theta), merged.logits(hm, rows(b.rows())));
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace zeroth::cli
