// `zeroth generate`: text from a prompt, greedy or sampled, with a KV cache.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fmt/format.h>

#include "core/error.h"
#include "launch/commands.h"
#include "launch/model_options.h"
#include "models/sampler.h"

namespace zeroth::cli {

Runner add_generate(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::string prompt;
    int steps = 128;
    SamplerConfig sampler;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("generate", "Generate text from a prompt");
  add_model_options(sub, opt->model);
  sub->add_option("-p,--prompt", opt->prompt, "Prompt text (BOS is added when the model has one)");
  sub->add_option("-n,--steps", opt->steps, "New tokens to generate (stops early at EOS)")->check(CLI::PositiveNumber);
  sub->add_option("--temperature", opt->sampler.temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  sub->add_option("--top-p", opt->sampler.top_p, "Nucleus sampling threshold in (0, 1]")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--seed", opt->sampler.seed, "Sampling seed");
  return [opt] {
    auto loaded = load_model(opt->model);
    const auto& model = *loaded.model;
    const auto& tok = *loaded.tokenizer;
    std::vector<int32_t> prompt = tok.encode(opt->prompt, tok.bos_id() >= 0, false);
    ZEROTH_CHECK(!prompt.empty(), "the prompt is empty and the model has no BOS token to start from");
    ZEROTH_CHECK(int64_t(prompt.size()) + opt->steps <= model.config().max_seq_len,
                 "prompt ({} tokens) + {} steps exceed the context length {}", prompt.size(), opt->steps,
                 model.config().max_seq_len);
    Sampler sampler(opt->sampler);
    KVCache cache = model.new_cache(int64_t(prompt.size()) + opt->steps);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits = model.decode(cache, prompt);
    const auto t1 = std::chrono::steady_clock::now();
    int32_t prev = -1;
    for (int32_t id : prompt) {
      std::fputs(tok.decode_piece(prev, id).c_str(), stdout);
      prev = id;
    }
    int generated = 0;
    for (; generated < opt->steps; ++generated) {
      const int32_t next = sampler.next(logits);
      if (next == tok.eos_id() || next == tok.bos_id()) break;  // llama2.c: BOS delimits stories
      std::fputs(tok.decode_piece(prev, next).c_str(), stdout);
      std::fflush(stdout);
      prev = next;
      if (generated + 1 < opt->steps) logits = model.decode(cache, {next});
    }
    std::fputs("\n", stdout);
    const auto t2 = std::chrono::steady_clock::now();
    fmt::print(stderr, "prompt: {} tokens in {:.3f} s; generated {} tokens at {:.1f} tokens/s\n", prompt.size(),
               std::chrono::duration<double>(t1 - t0).count(), generated,
               generated / std::max(1e-9, std::chrono::duration<double>(t2 - t1).count()));
    return 0;
  };
}

}  // namespace zeroth::cli
