// The forward pass against llama2.c's run.c on the real stories260K model
// (../shared/golden/stories260K): logits of all 64 positions within 1e-4, from
// both the llama2.c checkpoint and the GGUF file.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "models/loaders/llama_loader.h"
#include "tests/models/stories_golden.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

using test::golden_inputs;
using test::kGoldenTokens;
using test::read_golden_logits;

void expect_golden_logits(const std::string& model_path, const std::string& shared) {
  LlamaModel model(load_llama_weights(model_path), 2);
  TokenBatch batch;
  batch.add(golden_inputs());
  const auto hidden = model.forward_hidden(batch);
  std::vector<int64_t> rows(64);
  for (int i = 0; i < 64; ++i) rows[size_t(i)] = i;
  const auto logits = model.logits(hidden, rows);
  const auto golden = read_golden_logits(shared);
  ASSERT_EQ(golden.size(), logits.size());
  float worst = 0;
  for (size_t i = 0; i < golden.size(); ++i) worst = std::max(worst, std::abs(logits[i] - golden[i]));
  EXPECT_LT(worst, 1e-4f) << model_path;
  // Each greedy choice of the golden run is the argmax of our logits too.
  for (int p = 4; p < 64; ++p) {
    const float* row = logits.data() + p * 512;
    EXPECT_EQ(std::max_element(row, row + 512) - row, kGoldenTokens[size_t(p + 1)]) << "position " << p;
  }
}

TEST(LlamaGolden, Stories260KCheckpointMatchesRunC) {
  ZEROTH_REQUIRE_SHARED(shared);
  expect_golden_logits(shared + "/models/stories260K/stories260K.bin", shared);
}

TEST(LlamaGolden, Stories260KGgufMatchesRunC) {
  ZEROTH_REQUIRE_SHARED(shared);
  expect_golden_logits(shared + "/models/stories260K/stories260K-f32.gguf", shared);
}

TEST(LlamaGolden, CachedDecodingMatchesRunC) {
  ZEROTH_REQUIRE_SHARED(shared);
  LlamaModel model(load_llama_weights(shared + "/models/stories260K/stories260K.bin"), 1);
  const auto golden = read_golden_logits(shared);
  KVCache cache = model.new_cache();
  float worst = 0;
  for (int p = 0; p < 64; ++p) {
    const auto logits = model.decode(cache, {kGoldenTokens[size_t(p)]});
    for (int v = 0; v < 512; ++v) worst = std::max(worst, std::abs(logits[size_t(v)] - golden[size_t(p * 512 + v)]));
  }
  EXPECT_LT(worst, 1e-4f);
}

}  // namespace
}  // namespace zeroth
