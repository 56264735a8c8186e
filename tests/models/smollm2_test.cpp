// The real SmolLM2-135M-Instruct (Q4_1 GGUF from scripts/get-models) end to
// end: config, byte-level BPE round trip, greedy generation that knows a fact,
// and a language-model loss far below chance. Skips when the model is not cached.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "models/loaders/llama_loader.h"
#include "models/loaders/tokenizer_loader.h"
#include "models/tasks/language_model.h"
#include "tests/models/model_cache.h"

namespace zeroth {
namespace {

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): a
// byte-level BPE decoder that glued bytes wrongly would fail here.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + size_t(n) >= s.size()) return false;  // truncated sequence
    for (int j = 1; j <= n; ++j) {
      const auto d = static_cast<unsigned char>(s[i + size_t(j)]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += size_t(n) + 1;
  }
  return true;
}

// One model and tokenizer for the whole suite: loading maps ~94 MiB.
class SmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    ZEROTH_REQUIRE_SMOLLM2(path);
    if (!model_) {
      model_ = std::make_unique<LlamaModel>(load_llama_weights(path), 2);
      tok_ = load_tokenizer(path, "", model_->config().vocab_size);
    }
  }
  static void TearDownTestSuite() {
    model_.reset();
    tok_.reset();
  }
  static inline std::unique_ptr<LlamaModel> model_;
  static inline std::unique_ptr<Tokenizer> tok_;
};

TEST_F(SmolLM2, ConfigIsThe135MShape) {
  const auto& c = model_->config();
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.dim, 576);
  EXPECT_EQ(c.hidden_dim, 1536);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_TRUE(c.tie_embeddings);
  // The file's projections are Q4_1 and its embedding Q8_0; nothing re-quantized.
  EXPECT_EQ(model_->weights().layers[0].wq.dtype(), DType::Q4_1);
  EXPECT_EQ(model_->weights().tok_embeddings.dtype(), DType::Q8_0);
  EXPECT_NEAR(double(model_->weights().parameter_count()), 134.5e6, 0.5e6);
}

TEST_F(SmolLM2, ByteLevelBpeRoundTrips) {
  const std::string text = "Zeroth-order finetuning: naïve café prices rose 12.5% in 2024 — ok? 東京 🚀";
  const auto ids = tok_->encode(text, false, false);
  // Whole words merge: far fewer tokens than bytes.
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_EQ(tok_->decode(ids), text);
  // A common word is one token, spelled with GPT-2's Ġ for the leading space.
  const auto the = tok_->encode(" the", false, false);
  ASSERT_EQ(the.size(), 1u);
  EXPECT_EQ(tok_->token(the[0]), "\xC4\xA0the");
}

TEST_F(SmolLM2, GreedyGenerationKnowsTheCapitalOfFrance) {
  const auto& tok = *tok_;
  std::vector<int32_t> prompt = tok.encode("The capital of France is", tok.adds_bos() && tok.bos_id() >= 0, false);
  KVCache cache = model_->new_cache(int64_t(prompt.size()) + 12);
  std::vector<float> logits = model_->decode(cache, prompt);
  std::vector<int32_t> out;
  for (int i = 0; i < 12; ++i) {
    const auto next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == tok.eos_id()) break;
    out.push_back(next);
    logits = model_->decode(cache, {next});
  }
  const std::string text = tok.decode(out);
  EXPECT_TRUE(valid_utf8(text)) << text;
  EXPECT_NE(text.find("Paris"), std::string::npos) << "generated: " << text;
}

TEST_F(SmolLM2, EnglishNllIsFarBelowChance) {
  const std::string paragraph =
      "The sun rose slowly over the quiet village. Children ran to the river to play, while their parents "
      "went to work in the fields. In the evening, everyone gathered in the square to share stories and eat "
      "dinner together.";
  const auto& tok = *tok_;
  std::vector<int32_t> ids = tok.encode(paragraph, false, false);
  // The instruct model's first token (<|im_start|> as BOS) starts the document.
  if (tok.bos_id() >= 0) ids.insert(ids.begin(), tok.bos_id());
  const NllResult r = evaluate_nll(*model_, {ids});
  EXPECT_EQ(r.tokens, int64_t(ids.size()) - 1);
  // Chance is ln 49152 = 10.8 nats; a working 135M model gets ~3 here.
  EXPECT_LT(r.mean(), 4.0) << "mean NLL over " << r.tokens << " tokens";
  EXPECT_GT(r.mean(), 0.5) << "suspiciously low: is the target shifted?";
}

}  // namespace
}  // namespace zeroth
