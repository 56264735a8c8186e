// Helpers for the task tests: two hand-made tokenizers (SentencePiece-style
// and GPT-2 byte-level) whose whole words are known tokens, and a tiny random
// LLaMA over either vocabulary.
#pragma once
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "models/llama.h"
#include "models/tasks/task.h"
#include "models/tokenizer.h"
#include "tests/models/tokenizer_test_util.h"

namespace zeroth::test {

// Words that become one token each (with their leading space) in both tokenizers.
inline const std::vector<std::string> kTaskWords = {"great", "terrible", "It", "was", "movie", "the", "good", "bad"};

// <unk> <s> </s>, 256 byte pieces, printable ASCII, ▁, then ▁-prefixed words
// built up one letter at a time (BPE needs every prefix as a piece), longer
// pieces scoring higher so words merge completely.
inline TokenizerSpec task_sentencepiece_spec() {
  const std::string sp = "\xE2\x96\x81";
  TokenizerSpec spec;
  spec.model = "llama";
  spec.source = "task-test-sentencepiece";
  spec.pieces = {"<unk>", "<s>", "</s>"};
  spec.types = {2, 3, 3};
  spec.scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    spec.pieces.push_back(buf);
    spec.types.push_back(6);
    spec.scores.push_back(0);
  }
  auto add = [&](const std::string& p, float score) {
    for (const auto& q : spec.pieces)
      if (q == p) return;
    spec.pieces.push_back(p);
    spec.types.push_back(1);
    spec.scores.push_back(score);
  };
  add(sp, -1);
  for (char c = '!'; c <= '~'; ++c) add(std::string(1, c), -1);
  for (const auto& w : kTaskWords)
    for (size_t k = 1; k <= w.size(); ++k) add(sp + w.substr(0, k), float(k));
  spec.bos = 1;
  spec.eos = 2;
  spec.unk = 0;
  return spec;
}

// GPT-2's byte alphabet: bytes outside '!'..'~', '¡'..'¬', '®'..'ÿ' map to U+0100 onwards.
inline std::string gpt2_byte_char(int b) {
  auto printable = [](int k) { return (k >= 33 && k <= 126) || (k >= 161 && k <= 172) || (k >= 174 && k <= 255); };
  int cp = b;
  if (!printable(b)) {
    cp = 256;
    for (int k = 0; k < b; ++k) cp += printable(k) ? 0 : 1;
  }
  std::string s;
  append_codepoint(s, uint32_t(cp));
  return s;
}

// Ids 0..255 are bytes, then one piece per merge, then <|endoftext|> (BOS = EOS).
inline TokenizerSpec task_byte_level_spec() {
  const std::string g = gpt2_byte_char(' ');  // "Ġ"
  TokenizerSpec spec;
  spec.model = "gpt2";
  spec.source = "task-test-byte-level";
  spec.pre = "gpt2";
  for (int b = 0; b < 256; ++b) spec.pieces.push_back(gpt2_byte_char(b));
  for (const auto& w : kTaskWords) {
    std::string built = g;
    for (char c : w) {
      const std::string merged = built + std::string(1, c);
      bool known = false;
      for (const auto& p : spec.pieces) known = known || p == merged;
      if (!known) {
        spec.merges.push_back(built + " " + std::string(1, c));
        spec.pieces.push_back(merged);
      }
      built = merged;
    }
  }
  spec.types.assign(spec.pieces.size(), 1);
  spec.pieces.push_back("<|endoftext|>");
  spec.types.push_back(3);
  spec.bos = spec.eos = int32_t(spec.pieces.size()) - 1;
  return spec;
}

inline LlamaConfig task_llama_config(int64_t vocab) {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 48; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = vocab;
  c.max_seq_len = 64;
  return c;
}

inline CausalLM::ProjectionDims task_proj_dims(const LlamaConfig& c) {
  return {{{c.dim, c.q_dim()}, {c.dim, c.kv_dim()}, {c.dim, c.kv_dim()}, {c.q_dim(), c.dim},
           {c.dim, c.hidden_dim}, {c.dim, c.hidden_dim}, {c.hidden_dim, c.dim}}};
}

// An LQ-LoRA base: frozen factors of rank 2 (W ≈ Q + L1·L2, entries ~ N(0, 0.3²))
// on every projection of every layer.
inline void add_low_rank_parts(LlamaWeights& w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.3f);
  for (auto& layer : w.layers)
    for (int p = 0; p < kProjCount; ++p) {
      const Shape& s = layer.proj(Proj(p)).shape();  // (out, in)
      std::vector<float> a(size_t(2 * s[1])), b(size_t(s[0] * 2));
      for (float& x : a) x = d(rng);
      for (float& x : b) x = d(rng);
      layer.low_rank_a[size_t(p)] = Tensor::from_vector(a, {2, s[1]});
      layer.low_rank_b[size_t(p)] = Tensor::from_vector(b, {s[0], 2});
    }
}

// A task over 6 random examples of 4..11 tokens from ids 3..49 (a vocabulary of
// at least 50): "lm" (the loss starts at token 0 or 1), or "classification"
// with labels 0, 1, 0, … and label words {7}, {9}, or {7, 8}, {9} with
// `multi_token_words`. For the gradient and JVP tests on tiny random models.
inline std::unique_ptr<Task> make_random_task(const std::string& type, bool multi_token_words) {
  const bool cls = type == "classification";
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> tok(3, 49), len(4, 11);
  std::vector<Example> train;
  for (int i = 0; i < 6; ++i) {
    Example e;
    e.tokens.resize(size_t(len(rng)));
    for (auto& t : e.tokens) t = tok(rng);
    e.loss_begin = cls ? int64_t(e.tokens.size()) - 1 : (i % 2);
    e.label = cls ? i % 2 : -1;
    train.push_back(std::move(e));
  }
  TaskConfig cfg;
  cfg.type = type;
  std::vector<std::vector<int32_t>> words;
  if (cls) {
    cfg.label_words = {{"0", " no"}, {"1", " yes"}};
    words = multi_token_words ? std::vector<std::vector<int32_t>>{{7, 8}, {9}} : std::vector<std::vector<int32_t>>{{7}, {9}};
  }
  return make_task_from_examples(cfg, std::move(train), {}, {}, words);
}

}  // namespace zeroth::test
