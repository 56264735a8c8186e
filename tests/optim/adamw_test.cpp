// AdamW (optim/adamw.h) against a double-precision transcription of the
// update for a few steps, with decoupled weight decay; and its snapshot state.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "optim/adamw.h"

namespace zeroth {
namespace {

TEST(AdamW, MatchesTheUpdateRuleInDouble) {
  std::vector<float> a = {0.5f, -1.0f, 2.0f}, b = {0.25f, 0.0f};
  TrainableSet set;
  set.add("a", {3}, a.data());
  set.add("b", {2}, b.data());
  AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  AdamW opt(cfg, set);
  std::vector<double> th = {0.5, -1.0, 2.0, 0.25, 0.0}, m(5, 0.0), v(5, 0.0);
  const std::vector<std::vector<float>> grads = {{0.1f, -0.2f, 0.0f, 3.0f, -1e-3f}, {0.05f, 0.4f, -0.1f, 2.0f, 1e-3f},
                                                 {-0.3f, 0.1f, 0.2f, -1.0f, 0.0f}};
  const float lr = 0.01f;
  for (size_t s = 0; s < grads.size(); ++s) {
    opt.step(grads[s], lr);
    for (size_t i = 0; i < 5; ++i) {
      const double g = grads[s][i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double mh = m[i] / (1 - std::pow(0.9, double(s + 1))), vh = v[i] / (1 - std::pow(0.999, double(s + 1)));
      th[i] = th[i] - lr * (mh / (std::sqrt(vh) + 1e-8) + 0.1 * th[i]);
    }
    const std::vector<float> now = {a[0], a[1], a[2], b[0], b[1]};
    for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(now[i], th[i], 1e-6) << "step " << s << " element " << i;
  }
  EXPECT_EQ(opt.steps(), 3u);
  const TensorList st = opt.state();
  ASSERT_EQ(st.size(), 5u);  // m and v per tensor, then the step count
  EXPECT_EQ(st[0].name, "adamw.m.a");
  EXPECT_EQ(st[3].name, "adamw.v.b");
  EXPECT_NEAR(st[0].tensor.data<float>()[0], m[0], 1e-7);
  EXPECT_EQ(st.back().name, "adamw.step");
  EXPECT_EQ(*st.back().tensor.data<double>(), 3.0);
  EXPECT_THROW(opt.step(std::vector<float>(4), lr), Error);
  cfg.beta2 = 1.0f;
  EXPECT_THROW(AdamW(cfg, set), Error);
}

}  // namespace
}  // namespace zeroth
