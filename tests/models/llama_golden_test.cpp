// The forward pass against llama2.c's run.c on the real stories260K model
// (../shared/golden/stories260K): logits of all 64 positions within 1e-4, from
// both the llama2.c checkpoint and the GGUF file.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "models/loaders/llama_loader.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

const std::vector<int32_t> kGoldenTokens = {
    1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410,
    408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388,
    426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};

std::vector<float> read_golden_logits(const std::string& shared) {
  std::ifstream in(shared + "/golden/stories260K/logits_64x512.f32", std::ios::binary);
  std::vector<float> v(64 * 512);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
  EXPECT_EQ(in.gcount(), std::streamsize(v.size() * 4));
  return v;
}

void expect_golden_logits(const std::string& model_path, const std::string& shared) {
  LlamaModel model(load_llama_weights(model_path), 2);
  TokenBatch batch;
  batch.add(std::vector<int32_t>(kGoldenTokens.begin(), kGoldenTokens.begin() + 64));
  const auto hidden = model.forward_hidden(batch);
  std::vector<int64_t> rows(64);
  for (int i = 0; i < 64; ++i) rows[size_t(i)] = i;
  const auto logits = model.logits(hidden, rows);
  const auto golden = read_golden_logits(shared);
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
