// Dumps zeroth's LoRA gradients on a llama model for an outside check
// (tests/torch_lora_grads.py compares them with PyTorch autograd):
//
//   lora_grad_dump MODEL OUT.json [--seqs 3] [--len 24] [--rank 8] [--alpha 16]
//                  [--quantize DT] [--checkpoint]
//
// LoRA r/alpha on q and v of every layer (the torch peer's add_lora), A and B
// drawn N(0, 0.05²) from a fixed seed (B ≠ 0 so both gradients are non-zero),
// `seqs` random token sequences of `len` tokens, the LM loss (mean NLL of every
// next token). Writes the tokens, the factors, the loss and ∂L/∂A, ∂L/∂B as JSON.
#include <cstdint>
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "models/llama.h"
#include "models/loaders/llama_loader.h"
#include "models/tasks/task_gradient.h"

int main(int argc, char** argv) try {
  using namespace zeroth;
  if (argc < 3) throw std::runtime_error("usage: lora_grad_dump MODEL OUT.json [--seqs N] [--len N] [--rank R] "
                                         "[--alpha A] [--quantize DT] [--checkpoint]");
  int seqs = 3, len = 24;
  LoraConfig lc;
  lc.targets = {Proj::Q, Proj::V};
  LoadOptions lo;
  BackwardOptions bo;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--seqs") seqs = std::stoi(next());
    else if (a == "--len") len = std::stoi(next());
    else if (a == "--rank") lc.rank = std::stol(next());
    else if (a == "--alpha") lc.alpha = std::stof(next());
    else if (a == "--quantize") lo.quantize = parse_dtype(next());
    else if (a == "--checkpoint") bo.checkpoint = true;
    else throw std::runtime_error("unknown argument " + a);
  }
  LlamaModel model(load_llama_weights(argv[1], lo), 1);
  LoraAdapters lora(lc, model.n_layers(), model.projection_dims());
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  nlohmann::json out;
  for (int l = 0; l < model.n_layers(); ++l)
    for (Proj p : lc.targets) {
      for (float& x : lora.A(l, p)) x = nd(rng);
      for (float& x : lora.B(l, p)) x = nd(rng);
      const std::string name = fmt::format("layers.{}.{}", l, proj_name(p));
      out["A"][name] = lora.A(l, p);
      out["B"][name] = lora.B(l, p);
    }
  std::uniform_int_distribution<int32_t> tok(1, int32_t(model.vocab_size()) - 1);
  std::vector<Example> examples(static_cast<size_t>(seqs));
  for (auto& e : examples) {
    e.tokens.resize(size_t(len));
    for (auto& t : e.tokens) t = tok(rng);
    out["tokens"].push_back(e.tokens);
  }
  TaskConfig tc;
  tc.type = "lm";
  const auto task = make_task_from_examples(tc, examples, {}, {});
  std::vector<const Example*> ptrs;
  for (const auto& e : task->examples(Split::Train)) ptrs.push_back(&e);
  const TaskGradient g = task_gradient(model, *task, ptrs, lora, bo);
  out["loss"] = g.loss;
  out["rank"] = lc.rank;
  out["alpha"] = lc.alpha;
  for (int l = 0; l < model.n_layers(); ++l)
    for (Proj p : lc.targets) {
      const std::string name = fmt::format("layers.{}.{}", l, proj_name(p));
      out["dA"][name] = g.grads.dA(l, p);
      out["dB"][name] = g.grads.dB(l, p);
    }
  std::ofstream(argv[2]) << out.dump() << "\n";
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "lora_grad_dump: {}\n", e.what());
  return 1;
}
