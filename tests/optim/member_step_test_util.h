// Shared by the member-step tests (ZO and gradient): random documents over a
// tiny vocabulary, and LoRA adapters whose B is nonzero.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "models/tasks/task.h"
#include "optim/lora_trainable.h"

namespace zeroth::test {

// `n` documents of BOS then 6..14 tokens from ids 3..vocab-1.
inline std::vector<Example> random_documents(int n, uint32_t seed, int64_t vocab) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(vocab) - 1), len(6, 14);
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.tokens.push_back(1);  // BOS
    for (int k = len(rng); k > 0; --k) e.tokens.push_back(tok(rng));
    out.push_back(std::move(e));
  }
  return out;
}

// After PEFT's init (B = 0): B filled with N(0, 0.05²), so the adapted model
// differs from the base and perturbing A changes the loss too.
inline void make_b_nonzero(LoraTrainable& lora, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (const auto& t : lora.set().tensors())
    if (t.name.ends_with("lora_B"))
      for (int64_t i = 0; i < t.n; ++i) t.data[i] = nd(rng);
}

}  // namespace zeroth::test
