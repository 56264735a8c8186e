// Gemma 3 270M's GGUF (scripts/get-models gemma3): every tensor has a block
// format zeroth decodes, the q5_0 projections among them, and decoding them
// gives weights of a trained model's scale. Skipped where the file is not cached.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/formats/gguf.h"
#include "core/quant/quant.h"
#include "tests/models/model_cache.h"

namespace zeroth {
namespace {

TEST(Gemma3File, EveryTensorDecodes) {
  ZEROTH_REQUIRE_GEMMA3(path);
  const auto g = GgufFile::open(path);
  EXPECT_EQ(g.get_string("general.architecture"), "gemma3");
  std::map<std::string, int> by_type;
  for (const auto& info : g.tensor_infos()) {
    ASSERT_TRUE(info.dtype.has_value()) << info.name << " has a type zeroth cannot decode";
    ++by_type[std::string(dtype_name(*info.dtype))];
  }
  EXPECT_EQ(g.tensor_infos().size(), 236u);
  EXPECT_GE(by_type["q5_0"], 18 * 4);  // q, k, gate and up of the 18 layers at least
  // blk.0.attn_q (1024 × 640, q5_0): finite, centred, a trained matrix's spread.
  const Tensor q = g.tensor("blk.0.attn_q.weight");
  ASSERT_EQ(q.dtype(), DType::Q5_0);
  std::vector<float> row(640);
  double sum = 0, sq = 0;
  for (int64_t r = 0; r < q.shape()[0]; ++r) {
    dequantize_row(DType::Q5_0, q.row(r), row.data(), 640);
    for (float x : row) {
      ASSERT_TRUE(std::isfinite(x)) << "row " << r;
      sum += x;
      sq += double(x) * x;
    }
  }
  const double n = double(q.numel()), mean = sum / n, rms = std::sqrt(sq / n);
  EXPECT_LT(std::abs(mean), 0.1 * rms);
  EXPECT_GT(rms, 1e-3);
  EXPECT_LT(rms, 1.0);
}

}  // namespace
}  // namespace zeroth
